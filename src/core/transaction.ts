/**
 * The engine's transaction object: what plugins see as the transaction (qpsmtpd's method names),
 * plus the body writes and clean-up only the engine does, reachable through `transactionControl`.
 * @module
 */
import { rmSync } from "node:fs";
import type { Address } from "../api/address.ts";
import type { MailOptions } from "../api/esmtp.ts";
import type { Header } from "../api/header.ts";
import { linesOf } from "../api/lines.ts";
import { accessNote, notesStore, type NoteValue, type TransactionNotes } from "../api/notes.ts";
import type { Transaction } from "../api/transaction.ts";
import { Spool } from "./spool.ts";

export interface SpoolSettings {
  /** Where the message goes once it is larger than `threshold`; asked only then. */
  readonly dir: () => string;
  /** Bytes kept in memory before the message moves to a file. */
  readonly threshold: number;
}

/** What only the engine may do with a transaction. */
export interface TransactionControl {
  /** Appends received message data (LF line ends); `owned`: the caller hands the bytes over (no copy). */
  write(t: SmtpTransaction, data: Uint8Array, owned?: boolean): void;
  /** Marks where the body starts (after the original header block and its blank line). */
  setBodyStart(t: SmtpTransaction, offset: number): void;
  /** Records the MAIL parameters the core accepted. */
  setMailOptions(t: SmtpTransaction, options: MailOptions): void;
  /** The message is in a spool file (past size_threshold): data written now is not kept in memory. */
  onDisk(t: SmtpTransaction): boolean;
  /** Remembers a temp file to delete with the transaction. */
  addTempFile(t: SmtpTransaction, path: string): void;
  /** Frees the spool and the temp files. */
  destroy(t: SmtpTransaction): void;
}

let control!: TransactionControl;

const NO_OPTIONS: MailOptions = Object.freeze({ smtputf8: false, requiretls: false });

export class SmtpTransaction implements Transaction {
  readonly started: number;
  #sender: Address | undefined;
  #mailOptions: MailOptions = NO_OPTIONS;
  #recipients: Address[] = [];
  #header: Header | undefined;
  readonly #notes = notesStore();
  readonly #settings: SpoolSettings;
  #spool: Spool | undefined;
  #bodyStart = 0;
  /** Made by the first temp file: most transactions have none. */
  #tempFiles: string[] | undefined;

  constructor(settings: SpoolSettings, started = Date.now()) {
    this.#settings = settings;
    this.started = started;
  }

  static {
    control = {
      write(t, data, owned) {
        t.#spoolOf().write(data, owned);
      },
      setMailOptions(t, options) {
        t.#mailOptions = Object.freeze({ ...options });
      },
      onDisk(t) {
        return t.#spool !== undefined && !t.#spool.inMemory;
      },
      setBodyStart(t, offset) {
        t.#bodyStart = offset;
      },
      addTempFile(t, path) {
        (t.#tempFiles ??= []).push(path);
      },
      destroy(t) {
        t.#spool?.destroy();
        t.#spool = undefined;
        const files = t.#tempFiles;
        t.#tempFiles = undefined;
        for (const f of files ?? []) rmSync(f, { force: true, recursive: true });
      },
    };
  }

  #spoolOf(): Spool {
    return (this.#spool ??= new Spool(this.#settings.dir, this.#settings.threshold));
  }

  sender(address?: Address): Address | undefined {
    if (address !== undefined) this.#sender = address;
    return this.#sender;
  }

  mail_options(): MailOptions {
    return this.#mailOptions;
  }

  recipients(...list: Address[]): Address[] {
    if (list.length > 0) this.#recipients = [...list];
    return this.#recipients;
  }

  add_recipient(address: Address): void {
    this.#recipients.push(address);
  }

  remove_recipient(address: Address): void {
    const a = address.address().toLowerCase();
    this.#recipients = this.#recipients.filter((r) => r.address().toLowerCase() !== a);
  }

  header(header?: Header): Header | undefined {
    if (header !== undefined) this.#header = header;
    return this.#header;
  }

  notes<K extends string>(key: K, ...value: [NoteValue<TransactionNotes, K> | undefined] | []): NoteValue<TransactionNotes, K> | undefined {
    return accessNote(this.#notes, key, value) as NoteValue<TransactionNotes, K> | undefined;
  }

  data_size(): number {
    return this.#spool?.size ?? 0;
  }

  body_length(): number {
    return this.data_size() - this.#bodyStart;
  }

  body_filename(): string {
    return this.#spoolOf().filename();
  }

  data_stream(): AsyncGenerator<Buffer> {
    return this.#spoolOf().read(0);
  }

  body_stream(): AsyncGenerator<Buffer> {
    return this.#spoolOf().read(this.#bodyStart);
  }

  body_lines(): AsyncGenerator<string> {
    return linesOf(this.body_stream());
  }

  async body_as_string(): Promise<string> {
    const parts: Buffer[] = [];
    for await (const c of this.body_stream()) parts.push(c);
    return Buffer.concat(parts).toString("utf8");
  }

  async body_replace(body: Uint8Array | string): Promise<void> {
    const old = this.#spool;
    const fresh = new Spool(this.#settings.dir, this.#settings.threshold);
    // The spool keeps the original header block in front of the body: keep it there.
    let left = this.#bodyStart;
    if (old) {
      for await (const c of old.read(0)) {
        if (left <= 0) break;
        fresh.write(c.subarray(0, Math.min(left, c.length)));
        left -= c.length;
      }
    }
    fresh.write(typeof body === "string" ? Buffer.from(body) : body);
    old?.destroy();
    this.#spool = fresh;
  }

  async *message_stream(): AsyncGenerator<Buffer> {
    yield Buffer.from((this.#header?.as_string() ?? "") + "\n", "latin1");
    yield* this.body_stream();
  }
}

export const transactionControl: TransactionControl = control;
