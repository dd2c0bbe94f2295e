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
  /** The whole field as written, continuation lines included, without the final LF. */
  readonly raw: string;
}

const NAME = /^([!-9;-~]+):/;

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
        h.#fields[h.#fields.length - 1] = { name: last.name, raw: `${last.raw}\n${line}` };
        continue;
      }
      // An mbox "From " line becomes Mail-From:, as Mail::Header's COERCE mode does.
      if (line.startsWith("From ")) {
        h.#fields.push({ name: "Mail-From", raw: `Mail-From: ${line.slice(5)}` });
        continue;
      }
      const m = NAME.exec(line);
      if (m) h.#fields.push({ name: m[1]!, raw: line });
    }
    return h;
  }

  #indexes(tag: string): number[] {
    const t = tag.toLowerCase();
    const out: number[] = [];
    this.#fields.forEach((f, i) => {
      if (f.name.toLowerCase() === t) out.push(i);
    });
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
    const field = { name: tag, raw: `${tag}: ${value.replace(/\n+$/, "")}` };
    if (index === undefined) this.#fields.push(field);
    else if (index === 0) this.#fields.unshift(field);
    else {
      const at = this.#indexes(tag)[index];
      if (at === undefined) this.#fields.push(field);
      else this.#fields.splice(at, 0, field);
    }
  }

  /** Replaces the `index`th (default first) `tag` field, or adds one. */
  replace(tag: string, value: string, index = 0): void {
    const at = this.#indexes(tag)[index];
    const field = { name: tag, raw: `${tag}: ${value.replace(/\n+$/, "")}` };
    if (at === undefined) this.#fields.push(field);
    else this.#fields[at] = field;
  }

  /** Deletes every `tag` field, or only the `index`th one. Returns how many were deleted. */
  delete(tag: string, index?: number): number {
    const idx = this.#indexes(tag);
    const gone = new Set(index === undefined ? idx : idx.slice(index, index + 1));
    this.#fields = this.#fields.filter((_, i) => !gone.has(i));
    return gone.size;
  }

  /** Renames the fields `from` to `to`, keeping their position and value. */
  rename(from: string, to: string): void {
    this.#fields = this.#fields.map((f) =>
      f.name.toLowerCase() === from.toLowerCase() ? { name: to, raw: `${to}:${f.raw.slice(f.name.length + 1)}` } : f
    );
  }

  count(tag: string): number {
    return this.#indexes(tag).length;
  }

  /** Field names, each once, in order of first appearance. */
  tags(): string[] {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const f of this.#fields) {
      const k = f.name.toLowerCase();
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
