/**
 * The message header: the subset of Perl's Mail::Header that qpsmtpd plugins use.
 *
 * Fields keep their original text (folding and spacing) until a plugin changes them, so
 * signatures over untouched headers stay valid. Lines end in LF, as in qpsmtpd's spool.
 * @module
 */

interface Field {
  /** Field name as written. */
  readonly name: string;
  /** The name in lower case, for comparing (made once, not on every lookup). */
  readonly lower: string;
  /** The whole field as written, continuation lines included, without the final LF. */
  readonly raw: string;
}

function field(name: string, raw: string): Field {
  return { name, lower: lower(name), raw };
}

/** Field names in lower case, each made once: the same few names come in every message and every plugin's look-up. */
const LOWER = new Map<string, string>();

function lower(name: string): string {
  let l = LOWER.get(name);
  if (l === undefined) {
    l = name.toLowerCase();
    // Bounded: names are the sender's to choose.
    if (LOWER.size >= 1024) LOWER.clear();
    LOWER.set(name, l);
  }
  return l;
}

/** Whether `line` up to `end` is a field name: printable ASCII but the colon (RFC 5322 ftext). */
function isFieldName(line: string, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const c = line.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x3a) return false;
  }
  return true;
}

/** `value` without the LFs it ends with (a value from `get` ends with one). */
function withoutFinalNewlines(value: string): string {
  let end = value.length;
  while (end > 0 && value.charCodeAt(end - 1) === 10) end--;
  return end === value.length ? value : value.slice(0, end);
}

export class Header {
  #fields: Field[] = [];

  /** Parses header text (LF line ends). Lines that are not fields are dropped, as Mail::Header does. */
  static parse(text: string): Header {
    const h = new Header();
    const lines = text.split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    for (const line of lines) {
      const last = h.#fields[h.#fields.length - 1];
      if ((line[0] === " " || line[0] === "\t") && last) {
        h.#fields[h.#fields.length - 1] = { name: last.name, lower: last.lower, raw: `${last.raw}\n${line}` };
        continue;
      }
      // An mbox "From " line becomes Mail-From:, as Mail::Header's COERCE mode does.
      if (line.startsWith("From ")) {
        h.#fields.push(field("Mail-From", `Mail-From: ${line.slice(5)}`));
        continue;
      }
      const colon = line.indexOf(":");
      if (colon > 0 && isFieldName(line, colon)) h.#fields.push(field(line.slice(0, colon), line));
    }
    return h;
  }

  #indexes(tag: string): number[] {
    const t = lower(tag);
    const out: number[] = [];
    const fields = this.#fields;
    for (let i = 0; i < fields.length; i++) if (fields[i]!.lower === t) out.push(i);
    return out;
  }

  /** The values of `tag` (text after the colon, leading space removed, with a final LF). */
  get(tag: string): string[];
  get(tag: string, index: number): string | undefined;
  get(tag: string, index?: number): string[] | string | undefined {
    const values = this.#indexes(tag).map((i) => valueOf(this.#fields[i]!) + "\n");
    return index === undefined ? values : values[index];
  }

  /**
   * Adds a field: with no index at the end of the header, with index 0 at the start, with index
   * `i` before the `i`th field named `tag` (at the end when there are not that many).
   */
  add(tag: string, value: string, index?: number): void {
    const f = field(tag, `${tag}: ${withoutFinalNewlines(value)}`);
    if (index === undefined) this.#fields.push(f);
    else if (index === 0) this.#fields.unshift(f);
    else {
      const at = this.#indexes(tag)[index];
      if (at === undefined) this.#fields.push(f);
      else this.#fields.splice(at, 0, f);
    }
  }

  /** Replaces the `index`th (default first) `tag` field, or adds one. */
  replace(tag: string, value: string, index = 0): void {
    const at = this.#indexes(tag)[index];
    const f = field(tag, `${tag}: ${withoutFinalNewlines(value)}`);
    if (at === undefined) this.#fields.push(f);
    else this.#fields[at] = f;
  }

  /** Deletes every `tag` field, or only the `index`th one. Returns how many were deleted. */
  delete(tag: string, index?: number): number {
    const idx = this.#indexes(tag);
    if (idx.length === 0) return 0;
    const gone = new Set(index === undefined ? idx : idx.slice(index, index + 1));
    if (gone.size > 0) this.#fields = this.#fields.filter((_, i) => !gone.has(i));
    return gone.size;
  }

  /** Renames the fields `from` to `to`, keeping their position and value. */
  rename(from: string, to: string): void {
    const t = lower(from);
    if (!this.#fields.some((f) => f.lower === t)) return;
    this.#fields = this.#fields.map((f) => f.lower === t ? field(to, `${to}:${f.raw.slice(f.name.length + 1)}`) : f);
  }

  count(tag: string): number {
    return this.#indexes(tag).length;
  }

  /** Field names, each once, in order of first appearance. */
  tags(): string[] {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const f of this.#fields) {
      const k = f.lower;
      if (!seen.has(k)) {
        seen.add(k);
        out.push(f.name);
      }
    }
    return out;
  }

  /** The header block, each field ending in LF (no blank separator line). */
  as_string(): string {
    let s = "";
    for (const f of this.#fields) s += f.raw + "\n";
    return s;
  }

  toString(): string {
    return this.as_string();
  }
}

function valueOf(f: Field): string {
  return f.raw.slice(f.name.length + 1).replace(/^[ \t]+/, "");
}

/** How much of a message headerMayHave reads looking for the header's end (max_header_size's default). */
const HEADER_SCAN = 1024 * 1024;

/**
 * Whether the header block as the client sent it may hold a field named one of `names` (any
 * case): a quick test before a pass over the whole message, such as a verifier's. False means
 * it holds none. The test is of the text with all white space taken out, so a field whose name
 * is folded or spaced before its colon is still seen (it may say true for a field that is not
 * there). Reads `data_stream()` up to the first empty line, and says true past HEADER_SCAN
 * bytes without one (a BINARYMIME message is kept with its CRLFs, and is read no further).
 */
export async function headerMayHave(
  txn: { data_stream(): AsyncIterable<Uint8Array> },
  names: readonly string[],
): Promise<boolean> {
  let text = "";
  for await (const chunk of txn.data_stream()) {
    text += Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("latin1");
    const end = text.indexOf("\n\n");
    if (end >= 0) {
      text = text.slice(0, end);
      break;
    }
    if (text.length > HEADER_SCAN) return true;
  }
  const flat = text.replace(/\s+/g, "").toLowerCase();
  return names.some((n) => flat.includes(`${n.toLowerCase()}:`));
}
