import { z } from "zod";
import type { Actor } from "../engine/actor.ts";
import type { Envelope, RawItem, ValidItem } from "../engine/item.ts";
import type { StageSpec } from "../engine/registry.ts";
import { escapeRegExp } from "../engine/escape_regexp.ts";
import {
  type Check,
  fieldChecks,
  type FieldRule,
  fieldRule,
  fieldRuleSchema,
  isEmpty,
  show,
  typeName,
} from "./_field_rules.ts";

export const validateConfigSchema = z.strictObject({
  require: z.array(z.string().min(1)).default(["title", "url"])
    .describe(
      "Fields that must be present and non-empty (not blank, not []); default [title, url].",
    ),
  title: fieldRule("string").optional()
    .describe("Rules for `title` (type string unless given); default none."),
  text: fieldRule("string").optional()
    .describe("Rules for `text` (type string unless given); default none."),
  url: z.strictObject({
    schemes: z.array(z.string().regex(/^[a-z][a-z0-9+.-]*$/, "a scheme is lower-case, e.g. https"))
      .min(1).default(["http", "https"])
      .describe("Schemes a url may have; default [http, https]."),
  }).prefault({}).describe(
    "A present url must be an absolute scheme://... URL with one of `schemes`.",
  ),
  fields: z.record(z.string().min(1), fieldRuleSchema).default({})
    .describe("Rules per payload field, checked in the order written; default none."),
  spam: z.array(z.string().trim().min(1)).default([])
    .describe(
      "Words or phrases that reject an item found in its title or text (whole words, any case; in scripts written without spaces, anywhere); default none.",
    ),
}).describe(
  "Rejects items that lack required fields or break field rules; passes the rest unchanged.",
);

export type ValidateConfig = z.output<typeof validateConfigSchema>;

/**
 * The Validator: every rule compiled once into a list of checks, so `handle`
 * is a loop of plain function calls per item. An item's first failing check
 * is its reject reason. The order, and so which reason wins:
 *
 * 1. the payload is an object;
 * 2. `require`, in the order listed: `missing required field "title"`;
 * 3. `url`: `url: not an absolute http(s) URL: "notaurl"`;
 * 4. `title`, then `text`, then each of `fields` in the order written; per
 *    field: type, enum, pattern, then min/max
 *    (`title: 3 characters, fewer than the minimum 5`);
 * 5. `spam`, title before text: `spam word "casino" in title`.
 *
 * Valid items are emitted as they came, envelope and all. An item a source
 * marks deleted (`deleted: true`) passes unchecked: it may carry no more
 * than what identifies it (its url or guid), and it must reach the sinks so
 * they remove what they hold of it.
 *
 * @example
 * ```ts
 * import { createValidator, validateConfigSchema } from "./validator.ts";
 *
 * const validator = createValidator(validateConfigSchema.parse({ spam: ["casino"] }));
 * if (!validator.handle) throw new Error("a validator handles batches");
 * ```
 */
export function createValidator(config: ValidateConfig): Actor<RawItem, ValidItem> {
  const checks = compileChecks(config);
  return {
    handle(batch, out) {
      next: for (const item of batch) {
        if (item.payload?.deleted === true) {
          out.emit(item as Envelope<ValidItem>);
          continue;
        }
        for (const [label, check] of checks) {
          const reason = check(item.payload);
          if (reason !== undefined) {
            out.reject(item, label, reason);
            continue next;
          }
        }
        out.emit(item as Envelope<ValidItem>);
      }
    },
  };
}

/**
 * Each check with the short label summaries count rejections by ("missing
 * title"); the check's own message, which names the value, goes to dead
 * letters as the detail.
 */
function compileChecks(config: ValidateConfig): [string, Check][] {
  const checks: [string, Check][] = [["not an object", isObject]];
  for (const field of config.require) checks.push([`missing ${field}`, requireField(field)]);
  checks.push(["bad url", urlCheck(config.url.schemes)]);
  const rules = (field: string, rule: FieldRule) =>
    fieldChecks(field, rule).map((c): [string, Check] => [`bad ${field}`, c]);
  // A valid item's title and text are strings (ValidItem), whether or not rules are given: later
  // stages read them as text, and a title of another type (an object, an array nested
  // thousands deep) reached them.
  checks.push(...rules("title", { ...config.title, type: config.title?.type ?? "string" }));
  checks.push(...rules("text", { ...config.text, type: config.text?.type ?? "string" }));
  for (const [field, rule] of Object.entries(config.fields)) checks.push(...rules(field, rule));
  if (config.spam.length > 0) checks.push(["spam", spamCheck(config.spam)]);
  return checks;
}

const isObject: Check = (payload) =>
  typeof payload === "object" && payload !== null && !Array.isArray(payload)
    ? undefined
    : `payload is not an object: ${typeName(payload)}`;

function requireField(field: string): Check {
  const reason = `missing required field ${JSON.stringify(field)}`;
  return (payload) => (isEmpty(payload[field]) ? reason : undefined);
}

function urlCheck(schemes: string[]): Check {
  const allowed = new Set(schemes.map((s) => s + ":"));
  const label = schemes.length === 2 && allowed.has("http:") && allowed.has("https:")
    ? "http(s)"
    : schemes.join(" or ");
  return (payload) => {
    const url = payload.url;
    if (isEmpty(url)) return undefined;
    if (typeof url !== "string") return `url: expected a string, got ${typeName(url)}`;
    const trimmed = url.trim();
    const parsed = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? URL.parse(trimmed) : null;
    return parsed && allowed.has(parsed.protocol)
      ? undefined
      : `url: not an absolute ${label} URL: ${show(url)}`;
  };
}

/** The scripts written without spaces between words, as a class's contents. */
const UNSPACED_SCRIPTS =
  "\\p{scx=Han}\\p{scx=Hiragana}\\p{scx=Katakana}\\p{scx=Thai}\\p{scx=Lao}\\p{scx=Khmer}\\p{scx=Myanmar}\\p{scx=Tibetan}";
/** A character of a script written without spaces between words. */
const UNSPACED = new RegExp(`[${UNSPACED_SCRIPTS}]`, "u");
/**
 * What may not touch a whole word's end: a letter, a digit or an underscore
 * of a script written with spaces (one without them touches every word).
 */
const WORD_CHAR = `(?![${UNSPACED_SCRIPTS}])[\\p{L}\\p{N}_]`;

/**
 * One regular expression for every spam word, each in its own group so a
 * match names the word as configured. Whole words: no letter, digit or
 * underscore may touch either end, so "casino" misses "casinos" but hits
 * "#casino"; spaces inside a phrase match any run of whitespace. In a
 * script written without spaces (Chinese, Japanese, Thai, …) letters touch
 * every word, so they may touch a spam word's ends: `カジノ` is found in
 * 今日はカジノに行く, and `casino` in 今天去casino玩.
 */
function spamCheck(words: string[]): Check {
  const alternatives = words.map((w) => {
    const word = "(" + escapeRegExp(w).replace(/\s+/g, "\\s+") + ")";
    const chars = Array.from(w); // 𠀋 and its like are two code units
    const before = UNSPACED.test(chars[0]) ? "" : `(?<!${WORD_CHAR})`;
    const after = UNSPACED.test(chars[chars.length - 1]) ? "" : `(?!${WORD_CHAR})`;
    return before + word + after;
  });
  const re = new RegExp(alternatives.join("|"), "iu");
  const find = (text: unknown): string | undefined => {
    if (typeof text !== "string") return undefined;
    const m = re.exec(text);
    if (!m) return undefined;
    const group = m.findIndex((g, i) => i > 0 && g !== undefined);
    return words[group - 1];
  };
  return (payload) => {
    for (const field of ["title", "text"] as const) {
      const word = find(payload[field]);
      if (word !== undefined) return `spam word ${JSON.stringify(word)} in ${field}`;
    }
    return undefined;
  };
}

/**
 * ```yaml
 * - validate:
 *     require: [title, url]
 *     title: { min: 5, max: 500 }
 *     text: { max: 100000 }
 *     url: { schemes: [http, https] }
 *     fields:
 *       score: { type: number, min: 0 }
 *       lang: { enum: [en, de] }
 *       guid: { pattern: "^[a-z0-9]+$" }
 *     spam: [casino, "free money"]
 * ```
 */
export const validateStage: StageSpec<ValidateConfig> = {
  kind: "validate",
  leavesInputs: true,
  summary: "Rejects items that lack required fields, break field rules or carry spam words.",
  schema: validateConfigSchema,
  needs: () => [],
  adds: ["valid"],
  create: (config) => createValidator(config),
  workers: () => true,
};
