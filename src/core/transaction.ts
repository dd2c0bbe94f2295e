/**
 * One mail transaction: sender, recipients, header, body and notes. qpsmtpd's method names.
 * @module
 */
import { rmSync } from "node:fs";
import type { Address } from "../smtp/address.ts";
import { Header } from "./header.ts";
import { Notes } from "./notes.ts";
import { linesOf, Spool } from "./spool.ts";

export class Transaction {
  #sender: Address | undefined;
  #recipients: Address[] = [];
  #header: Header | undefined;
  readonly #notes = new Notes();
  #spool: Spool | undefined;
  #bodyStart = 0;
  readonly #tempFiles: string[] = [];
  /** Epoch milliseconds when the transaction began. */
  readonly started = Date.now();
  readonly #spoolDir: string;
  readonly #threshold: number;

  constructor(spoolDir = "", sizeThreshold = 0) {
    this.#spoolDir = spoolDir;
    this.#threshold = sizeThreshold;
  }

  /** Gets, or sets and returns, the envelope sender. */
  sender(addr?: Address): Address | undefined {
    if (addr !== undefined) this.#sender = addr;
    return this.#sender;
  }

  /** Gets the recipients; with arguments, replaces the whole list. */
  recipients(...list: Address[]): Address[] {
    if (list.length > 0) this.#recipients = [...list];
    return this.#recipients;
  }

  add_recipient(addr: Address): void {
    this.#recipients.push(addr);
  }

  /** Removes every recipient whose address matches (case-insensitively). */
  remove_recipient(addr: Address): void {
    const a = addr.address().toLowerCase();
    this.#recipients = this.#recipients.filter((r) => r.address().toLowerCase() !== a);
  }

  /** Gets, or sets and returns, the parsed header (present once the header block was read). */
  header(h?: Header): Header | undefined {
    if (h !== undefined) this.#header = h;
    return this.#header;
  }

  notes(key: string, ...value: [unknown] | []): unknown {
    return this.#notes.access(key, value);
  }

  /** The raw notes object (prototype-less). */
  get notesData(): Record<string, unknown> {
    return this.#notes.data;
  }

  // ---- body -------------------------------------------------------------------------------

  /** Appends message data (LF line ends); the core calls this while DATA arrives. */
  body_write(data: Buffer | string): void {
    this.#spool ??= new Spool(this.#spoolDir, this.#threshold);
    this.#spool.write(typeof data === "string" ? Buffer.from(data) : data);
  }

  /** Marks where the body starts (after the original header block and its blank line). */
  set_body_start(offset: number): void {
    this.#bodyStart = offset;
  }

  body_start(): number {
    return this.#bodyStart;
  }

  /** Bytes received after DATA (LF-normalised, dot-unstuffed). */
  data_size(): number {
    return this.#spool?.size ?? 0;
  }

  /** data_size minus the original header block. */
  body_length(): number {
    return this.data_size() - this.#bodyStart;
  }

  /** Path of the spool file holding the original header and body; spools to disk first if needed. */
  body_filename(): string {
    this.#spool ??= new Spool(this.#spoolDir, this.#threshold);
    return this.#spool.filename();
  }

  /** The body (after the original header) in chunks. */
  body_stream(): AsyncGenerator<Buffer> {
    return (this.#spool ?? new Spool(this.#spoolDir, this.#threshold)).read(this.#bodyStart);
  }

  /** The body as lines ending in LF. */
  body_lines(): AsyncGenerator<string> {
    return linesOf(this.body_stream());
  }

  async body_as_string(): Promise<string> {
    const parts: Buffer[] = [];
    for await (const c of this.body_stream()) parts.push(c);
    return Buffer.concat(parts).toString("utf8");
  }

  /** The message to hand on: the (modified) header, a blank line, then the body. LF line ends. */
  async *message_stream(): AsyncGenerator<Buffer> {
    yield Buffer.from((this.#header?.as_string() ?? "") + "\n", "latin1");
    yield* this.body_stream();
  }

  /** Remembers a plugin's temp file so it is deleted with the transaction. */
  add_temp_file(path: string): void {
    this.#tempFiles.push(path);
  }

  /** Frees the spool and temp files. The core calls this when the transaction is reset. */
  destroy(): void {
    this.#spool?.destroy();
    this.#spool = undefined;
    for (const f of this.#tempFiles.splice(0)) rmSync(f, { force: true, recursive: true });
  }
}
