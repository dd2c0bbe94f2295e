/**
 * A plugin's arguments (the words after its name in `config/plugins`) as qpsmtpd plugins take
 * them: `key value` pairs and bare flags in any order, and positional words. Anything the plugin
 * does not know is an error, so a typo stops the load with the file and line instead of being
 * ignored (or taken for a path). `timeout N` and `loglevel L`, which the engine reads, are always
 * known.
 *
 * ```ts
 * export const register: Init<Data> = function (_server, ...words) {
 *   const a = parsePluginArgs("dnsbl", words, { values: ["reject_type", "reject"], flags: ["noreject"] });
 *   this.data.type = a.values.reject_type ?? "perm";
 * };
 * ```
 * @module
 */

export interface ArgSpec<K extends string> {
  /** Keys followed by a value. */
  readonly values?: readonly K[];
  /** Keys that stand alone. */
  readonly flags?: readonly K[];
  /** How many positional words it takes, at least and at most. @default [0, 0] */
  readonly positional?: readonly [min: number, max: number];
  /** Words for the positional arguments in messages, e.g. `"PATH"`. */
  readonly usage?: string;
}

export interface PluginArgs<K extends string> {
  /** The positional words, in order. */
  readonly positional: readonly string[];
  /** Each key's value (the engine's `timeout` and `loglevel` included when given). */
  readonly values: Readonly<Partial<Record<K | "timeout" | "loglevel", string>>>;
  /** The flags that were given. */
  readonly flags: ReadonlySet<K>;
}

const ENGINE = ["timeout", "loglevel"] as const;

/** Parses `words` for `plugin`; throws an Error naming the plugin and the word it does not know. */
export function parsePluginArgs<K extends string>(plugin: string, words: readonly string[], spec: ArgSpec<K>): PluginArgs<K> {
  const valueKeys = new Set<string>([...(spec.values ?? []), ...ENGINE]);
  const flagKeys = new Set<string>(spec.flags ?? []);
  const [min, max] = spec.positional ?? [0, 0];
  const takes = (): string => {
    const keys = [...(spec.values ?? []).map((k) => `${k} VALUE`), ...(spec.flags ?? [])];
    const pos = max > 0 ? [spec.usage ?? `${max === min ? max : `${min} to ${max}`} positional`] : [];
    return [...pos, ...keys].join(", ") || "no arguments";
  };
  const positional: string[] = [];
  const values: Partial<Record<string, string>> = {};
  const flags = new Set<K>();
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (valueKeys.has(w)) {
      if (i + 1 >= words.length) throw new Error(`${plugin}: "${w}" needs a value`);
      if (values[w] !== undefined) throw new Error(`${plugin}: "${w}" is given twice`);
      values[w] = words[++i]!;
    } else if (flagKeys.has(w)) {
      flags.add(w as K);
    } else if (positional.length < max) {
      positional.push(w);
    } else {
      throw new Error(`${plugin}: unknown argument "${w}" (it takes: ${takes()})`);
    }
  }
  if (positional.length < min) throw new Error(`${plugin}: missing argument (it takes: ${takes()})`);
  return { positional, values: values as PluginArgs<K>["values"], flags };
}
