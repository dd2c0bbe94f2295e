/**
 * One mail transaction as plugins see it (`this.transaction`, and the first argument of every
 * hook): envelope, header, body and notes, with qpsmtpd's method names.
 * @module
 */
import type { Address } from "./address.ts";
import type { MailOptions } from "./esmtp.ts";
import type { Header } from "./header.ts";
import type { NoteValue, TransactionNotes } from "./notes.ts";

export interface Transaction {
  /** When the transaction began, epoch milliseconds. */
  readonly started: number;
  /** Gets, or sets and returns, the envelope sender. */
  sender(address?: Address): Address | undefined;
  /** What the MAIL command's parameters declared (SIZE, BODY, SMTPUTF8, REQUIRETLS, DSN RET/ENVID). */
  mail_options(): MailOptions;
  /** The recipients accepted so far; with arguments, replaces the whole list. */
  recipients(...list: Address[]): Address[];
  add_recipient(address: Address): void;
  /** Removes every recipient with the same address (case-insensitively). */
  remove_recipient(address: Address): void;
  /** Gets, or sets and returns, the parsed header; present once the header block was read. */
  header(header?: Header): Header | undefined;
  /** Notes for the life of the transaction; declare yours in `TransactionNotes`. */
  notes<K extends string>(key: K, ...value: [NoteValue<TransactionNotes, K> | undefined] | []): NoteValue<TransactionNotes, K> | undefined;
  /** Bytes received after DATA (line ends as LF, dots unstuffed). */
  data_size(): number;
  /** `data_size()` minus the original header block. */
  body_length(): number;
  /** The body (after the original header block) in chunks. */
  body_stream(): AsyncIterable<Uint8Array>;
  /** The body as UTF-8 lines that keep their LF (the last may lack one). */
  body_lines(): AsyncIterable<string>;
  body_as_string(): Promise<string>;
  /**
   * The path of a file holding the original header block and the body (virus scanners read it);
   * the message is moved to disk first if it is in memory.
   */
  body_filename(): string;
  /**
   * What `body_filename()`'s file holds (the original header block and the body, LF line ends), in
   * chunks, read from memory while the message is there: for verifiers that need the message as
   * it came (DKIM, ARC), without writing a small message to disk.
   */
  data_stream(): AsyncIterable<Uint8Array>;
  /** The message to hand on: the (modified) header, a blank line, then the body; LF line ends. */
  message_stream(): AsyncIterable<Uint8Array>;
  /**
   * Replaces the body (everything after the header block) with `body`, LF line ends; the header
   * is not touched. For content filters that rewrite the message (a milter's replacement body).
   */
  body_replace(body: Uint8Array | string): Promise<void>;
}
