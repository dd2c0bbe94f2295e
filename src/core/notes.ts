/**
 * Notes: per-connection, per-transaction and per-address key/value stores, kept in
 * prototype-less objects so a key such as `__proto__` is just a key.
 * @module
 */

export class Notes {
  readonly data: Record<string, unknown> = Object.create(null);

  /** qpsmtpd's `notes(key[, value])`: with a value it sets (undefined included), always returns the value. */
  access(key: string, value: [unknown] | []): unknown {
    if (value.length > 0) this.data[key] = value[0];
    return this.data[key];
  }
}
