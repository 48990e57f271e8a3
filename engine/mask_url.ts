/**
 * Connection URLs fit for logs and errors, for every adapter that takes one
 * (Redis, Postgres, Qdrant): one reading of where a secret can sit.
 */

import { escapeRegExp } from "./escape_regexp.ts";

/** Where a URL's userinfo sits (`scheme://<userinfo>@host`) and its parts. */
interface Userinfo {
  start: number;
  end: number;
  user: string;
  password?: string;
}

/**
 * A web scheme's authority: URL parsers (WHATWG's, which fetch and zod's
 * `z.url` use) skip any run of "/" and "\\" after `http:`, so
 * `http:///bob:pw@host` and `http:bob:pw@host` send bob's password too.
 */
const WEB_AUTHORITY = /^(?:https?|wss?|ftp):[/\\]*/i;

function userinfoOf(given: string): Userinfo | undefined {
  const web = WEB_AUTHORITY.exec(given);
  // A web URL's "\\" is a "/" to its parsers: read it so (same length, same offsets).
  const url = web ? given.replaceAll("\\", "/") : given;
  const scheme = url.indexOf("://");
  if (!web && scheme < 0) return undefined;
  const start = web ? web[0].length : scheme + 3;
  const at = userinfoEnd(url, start);
  if (at < 0) return undefined;
  const userinfo = given.slice(start, at);
  const colon = userinfo.indexOf(":");
  return colon < 0
    ? { start, end: at, user: userinfo }
    : { start, end: at, user: userinfo.slice(0, colon), password: userinfo.slice(colon + 1) };
}

/** Schemes of connection URLs (a server's address and credentials, never a page). */
const CONNECTION = /^(?:redis|rediss|postgres|postgresql|amqp|amqps|mongodb|mysql):\/\//i;

/**
 * Where the userinfo ends (its "@"), or -1. Normally the last "@" before
 * the first "/". But a password holding an unencoded "/" (base64 ones do)
 * ends the authority early, so parsers refuse the URL and their error
 * quotes it whole (`redis://:ab/cd@host`):
 * - a connection URL (Redis, Postgres) has no "@" in its path or query,
 *   so its last "@" ends the userinfo, wherever it is; a URL masked beyond
 *   its userinfo is the price of never showing a password;
 * - a web URL (or any other) may hold "@" in its path
 *   (`https://medium.com/@user`): past the first "/", an "@" before any
 *   "?" or "#" ends the userinfo only when a ":" before that "/" parts a
 *   user from a password, not a host from its port (`example.com:8080/`,
 *   `localhost:8080/`, `[::1]:8080/`); and the "@" is the last one before
 *   the next "/" (a password may hold "@" too).
 */
function userinfoEnd(url: string, start: number): number {
  if (CONNECTION.test(url)) {
    const at = url.lastIndexOf("@");
    return at >= start ? at : -1;
  }
  const slash = url.indexOf("/", start);
  if (slash === start) return -1; // no authority (file:///)
  const authority = url.slice(start, slash < 0 ? undefined : slash);
  const inAuthority = authority.lastIndexOf("@");
  if (inAuthority >= 0) return start + inAuthority;
  if (slash < 0) return -1;
  // A bracketed IPv6 host has colons of its own.
  const colon = authority.startsWith("[") ? -1 : authority.indexOf(":");
  if (colon < 0) return -1;
  const before = authority.slice(0, colon), after = authority.slice(colon + 1);
  const isPort = /^\d*$/.test(after) && (before.includes(".") || /^localhost$/i.test(before));
  if (isPort) return -1;
  const query = url.slice(slash).search(/[?#]/);
  const stop = query < 0 ? url.length : slash + query;
  const first = url.indexOf("@", slash);
  if (first < 0 || first >= stop) return -1;
  const next = url.indexOf("/", first);
  return url.lastIndexOf("@", (next < 0 || next > stop ? stop : next) - 1);
}

/**
 * In a Postgres URL a lone userinfo names the role (postgres://app@db);
 * elsewhere it may be the secret itself (redis://s3cret@host).
 */
const namesUser = (url: string) => /^postgres(ql)?:\/\//i.test(url);

/**
 * Query (or `;` path) parameters that carry a secret: a password, or an API
 * key, token, session or signature some services take in the URL. A name is
 * read as words (split at `-`, `_`, `.` and camelCase, percent-decoded),
 * and its last word says what it holds: any key (`key`, `api_key`,
 * `x-api-key`, `apiKey`, `access_key`, `subscription-key`, `auth_key`),
 * `auth` alone, a session id (`session_id`), or a word below
 * (`access_token`, `private_token`, `client_secret`, `passphrase`,
 * `jsessionid`, `X-Amz-Signature`, `appid`, `Authorization`, OpenWeatherMap's key…),
 * or one of password, passwd, passphrase, secret or token run into another
 * word (`sslpassword`, `accesstoken`),
 * in a list form too (`api_key[]`);
 * `max_tokens` or `token_count` are counts. A `;` parameter's value ends
 * at the next `;`, `?`, `/` or `#`.
 */
const SECRET_PARAM = /([?&#])([^=&#;?]+)=([^&#]*)|(;)([^=&#;?/]+)=([^;?/#]*)/g;
const SECRET_WORDS = new Set([
  "token",
  "secret",
  "password",
  "passwd",
  "pass",
  "passphrase",
  "appid",
  "pwd",
  "sig",
  "signature",
  "credential",
  "credentials",
  "session",
  "sessionid",
  "jsessionid",
  "phpsessid",
  "apikey",
  "authorization",
  "jwt",
]);

function isSecretParam(given: string): boolean {
  let name = given;
  try {
    name = decodeURIComponent(given);
  } catch {
    // not percent-encoded: read as given
  }
  // PHP's and Rails' list form, `api_key[]=` or `api_key[0]=`, names the same thing.
  name = name.replace(/(?:\[[^\]]*\])+$/, "");
  const words = name.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase().split(/[\s._-]+/)
    .filter(Boolean);
  const last = words[words.length - 1] ?? "";
  const before = words[words.length - 2];
  if (words.length === 1 && last === "auth") return true;
  return SECRET_WORDS.has(last) || last === "key" || (last === "id" && before === "session") ||
    RUN_IN.test(last);
}

/**
 * A last word that ends in a secret's name run into another word, as libpq
 * writes `sslpassword` (the passphrase of a client key) and others write
 * `dbpasswd`, `clientsecret`, `accesstoken`, `appkey` or `secretkey`; a
 * `key` only after a word that makes it a credential's (`monkey` is none).
 */
const RUN_IN =
  /(?:password|passwd|passphrase|secret|token|(?:app|secret|auth|access|private|pass|license|client|master|signing|encryption|session|dev|developer|user|sub|subscription)key)$/;

/** A SECRET_PARAM match's separator, name and value, whichever form matched. */
function paramOf(m: RegExpMatchArray | string[]): { sep: string; name: string; value: string } {
  return m[1] !== undefined
    ? { sep: m[1], name: m[2], value: m[3] }
    : { sep: m[4], name: m[5], value: m[6] };
}

/** The secret parameters of `url`: each one's name and value (to MAX_NESTING deep). */
function* secretParams(url: string, depth = 0): Generator<{ name: string; value: string }> {
  for (const m of url.matchAll(SECRET_PARAM)) {
    const { name, value } = paramOf(m);
    if (isSecretParam(name)) yield { name, value };
    else if (depth < MAX_NESTING && NESTED.test(value)) yield* secretParams(value, depth + 1);
  }
  for (const { name, value, depth } of encodedSecrets(url)) {
    yield { name, value };
    // As the server it is sent to reads it: decoded once for each level of encoding.
    let decoded = value;
    for (let i = 0; i <= depth.length / 2; i++) {
      try {
        decoded = decodeURIComponent(decoded);
      } catch {
        break;
      }
    }
    if (decoded !== value) yield { name, value: decoded };
  }
}

/**
 * The URL with its password replaced by `***`: in the userinfo, as a
 * `password=` parameter (or a key or token one: see SECRET_PARAM), or a
 * lone userinfo that may be one.
 *
 * @example
 * ```ts
 * import { maskUrl } from "../mod.ts";
 * const masked = maskUrl("postgres://app:s3cret@db:5432/news");
 * if (masked !== "postgres://app:***@db:5432/news") throw new Error(masked);
 * ```
 */
export function maskUrl(url: string): string {
  const u = userinfoOf(url);
  let out = url;
  if (u?.password !== undefined) {
    out = url.slice(0, u.start) + u.user + ":***" + url.slice(u.end);
  } else if (u && !namesUser(url)) {
    out = url.slice(0, u.start) + "***" + url.slice(u.end);
  } else if (!u && !url.includes("://") && url.includes("@")) {
    out = "***@" + url.slice(url.lastIndexOf("@") + 1);
  }
  return maskEncoded(rewriteParams(out, MASK));
}

/** What to put for a secret parameter, and for a value nested past MAX_NESTING that holds a query. */
interface ParamRule {
  secret(sep: string, name: string): string;
  tooDeep: string;
  /** Applied to a text in which a secret was replaced. */
  after?(text: string): string;
}

/**
 * `text` with its secret parameters replaced as `rule` says; another
 * parameter's value is read again for them, since it may be a URL with a
 * query of its own (`?next=/x?api_key=…`), whose `?` the first reading took
 * for part of the value. Past MAX_NESTING the rest is replaced whole: a
 * page's link cannot run the stack out.
 */
function rewriteParams(text: string, rule: ParamRule, depth = 0): string {
  let replaced = false;
  const out = text.replace(SECRET_PARAM, (all: string, ...groups: string[]) => {
    const { sep, name, value } = paramOf(["", ...groups]);
    if (isSecretParam(name)) {
      replaced = true;
      return rule.secret(sep, name);
    }
    if (!NESTED.test(value)) return all;
    const inner = depth >= MAX_NESTING ? rule.tooDeep : rewriteParams(value, rule, depth + 1);
    return inner === value ? all : `${sep}${name}=${inner}`;
  });
  return replaced && rule.after ? rule.after(out) : out;
}

/** The secret parameters' values replaced by `***`. */
const MASK: ParamRule = { secret: (sep, name) => `${sep}${name}=***`, tooDeep: "***" };

/**
 * The secret parameters left out, of a nested query (a parameter's value)
 * and those nested in it: `/feed?api_key=K&id=2` becomes `/feed?id=2`, and
 * `/feed?api_key=K` `/feed`.
 */
const STRIP: ParamRule = {
  secret: (sep) => sep === "?" ? "?" : "",
  tooDeep: "",
  after: (text) => text.replace(/\?&/g, "?").replace(/\?(?=#|$)/, ""),
};

/** A value holding a query of its own: a `?` or `;` before a name and `=`. */
const NESTED = /[?;][^=&#;?]+=/;

/** URLs nested in values read at most; deeper, a value holding a query is masked or cut whole. */
const MAX_NESTING = 8;

/**
 * A parameter of a URL given percent-encoded as another's value
 * (`next=%2Ffeed%3Fapi_key%3D…`), however many times (`%253F`): `%`, the
 * `25`s of its depth, its separator (`3F` ?, `26` &, `3B` ;), its name, and
 * its value up to the next separator of the same depth (a `%2526` in a
 * `%26`-separated query is an `&` of the value). Read in the encoded text
 * itself, so nothing is decoded and written again (a Latin-1 `%E9` does not
 * decode as UTF-8, and a `+` written again would be `%2B`).
 */
const ENCODED_PARAM =
  /%((?:25)*)(3[fF]|26|3[bB])((?:(?!%\1(?:3[dDfFbB]|26|23))[^&#=?;])+)%\1(?:3[dD])((?:(?!%\1(?:3[fFbB]|26|23))[^&#])*)/g;

/** An encoded parameter found by encodedParams: where it stands in the text, and its parts. */
interface EncodedParam {
  start: number;
  end: number;
  depth: string;
  /** `?`, `&` or `;`. */
  sep: "?" | "&" | ";";
  name: string;
  /** Where its value starts in the text. */
  valueStart: number;
}

/**
 * The encoded parameters of `text` that belong to an encoded query: one
 * opened by a `?` or `;` of their depth. A `%26key%3D` in a search phrase
 * (`q=piano%26key%3Dc-major`) is no parameter of any URL.
 */
function encodedParams(text: string): EncodedParam[] {
  if (!text.includes("%")) return [];
  const opened = new Set<string>();
  const found: EncodedParam[] = [];
  for (const m of text.matchAll(ENCODED_PARAM)) {
    const [all, depth, code, name, value] = m;
    const sep = code === "26" ? "&" : /^3[fF]$/.test(code) ? "?" : ";";
    if (sep !== "&") opened.add(depth);
    else if (!opened.has(depth)) continue;
    const start = m.index!;
    found.push({
      start,
      end: start + all.length,
      depth,
      sep,
      name,
      valueStart: start + all.length - value.length,
    });
  }
  return found;
}

/** A name read in the encoded text: decoded as far as it decodes. */
function encodedName(name: string): string {
  let out = name;
  for (let i = 0; i < 3 && out.includes("%"); i++) {
    try {
      out = decodeURIComponent(out);
    } catch {
      break;
    }
  }
  return out;
}

/** The encoded secret parameters of `text` (encodedParams), with their values. */
function* encodedSecrets(text: string): Generator<EncodedParam & { value: string }> {
  for (const p of encodedParams(text)) {
    if (isSecretParam(encodedName(p.name))) yield { ...p, value: text.slice(p.valueStart, p.end) };
  }
}

/** `text` with the values of its percent-encoded secret parameters masked. */
function maskEncoded(text: string): string {
  let out = "", at = 0;
  for (const p of encodedSecrets(text)) {
    out += text.slice(at, p.valueStart) + "***";
    at = p.end;
  }
  return at === 0 ? text : out + text.slice(at);
}

/**
 * `text` without its percent-encoded secret parameters: one after a `?`
 * goes with the `&` after it (the `?` stays), or with the `?` when it is
 * the last; one after an `&` or `;` goes with it. Nothing else changes.
 */
function stripEncoded(text: string): string {
  let out = "", at = 0;
  for (const p of encodedSecrets(text)) {
    if (p.start < at) continue;
    const amp = `%${p.depth}26`;
    const ampAfter = text.slice(p.end, p.end + amp.length).toUpperCase() === amp.toUpperCase();
    // After an & or ;, or a last one after a ?, the separator goes with it; else the ? stays
    // (`%3Fapi_key%3DK%26id%3D2`), and the & after the secret goes.
    const keepSep = p.sep === "?" && p.end < text.length;
    out += text.slice(at, keepSep ? p.start + 1 + p.depth.length + 2 : p.start);
    at = keepSep && ampAfter ? p.end + amp.length : p.end;
  }
  return at === 0 ? text : out + text.slice(at);
}

/**
 * The URL without its query (or `;` path) parameters that maskUrl masks (a
 * token, a key, a password: isSecretParam) and without its user:password,
 * the rest as written: the address an item made from a fetched page
 * carries to sinks and dead letters, where the credential a flow fetched
 * it with has no business, even when the page names itself with it (a
 * canonical link or og:url that repeats the address asked for).
 *
 * @example
 * ```ts
 * import { withoutSecretParams } from "./mask_url.ts";
 * const url = withoutSecretParams("https://example.com/a;jsessionid=s1?id=7&access_token=abc123");
 * if (url !== "https://example.com/a?id=7") throw new Error(url);
 * ```
 */
export function withoutSecretParams(url: string): string {
  const u = URL.parse(url);
  if (!u) return url;
  let changed = false;
  if (u.username || u.password) {
    u.username = u.password = "";
    changed = true;
  }
  const path = u.pathname.replace(PATH_PARAM, (param, name) => isSecretParam(name) ? "" : param);
  if (path !== u.pathname) {
    u.pathname = path;
    changed = true;
  }
  if (u.search.length > 1) {
    const parts = u.search.slice(1).split("&");
    // A value that is a URL of its own (`next=/x?api_key=…`) loses its secrets too.
    const kept = parts.filter((part) => {
      const eq = part.indexOf("=");
      return !isSecretParam(eq < 0 ? part : part.slice(0, eq));
    }).map((part) => {
      const eq = part.indexOf("=");
      if (eq < 0) return part;
      const value = part.slice(eq + 1);
      return part.slice(0, eq + 1) +
        stripEncoded(NESTED.test(value) ? rewriteParams(value, STRIP) : value);
    });
    if (kept.join("&") !== parts.join("&")) {
      u.search = kept.length > 0 ? "?" + kept.join("&") : "";
      changed = true;
    }
  }
  return changed ? u.href : url;
}

/** A `;name=value` parameter of a path segment (`/a;jsessionid=…`), its name captured. */
const PATH_PARAM = /;([^=;/]+)=[^;/]*/g;

/**
 * Every form of the URL's password that a driver's message may repeat, raw
 * and percent-decoded, longest first.
 */
export function urlSecrets(url: string): string[] {
  const found = new Set<string>();
  const u = userinfoOf(url);
  if (u?.password !== undefined) {
    found.add(u.password);
    // What a server that echoes the request's headers repeats: fetch sends them as Basic auth.
    const basic = basicToken(u.user, u.password);
    if (basic) found.add(basic);
  } else if (u && !namesUser(url)) found.add(u.user);
  // A key or token is long; a short value (`?key=en`, `?auth=1`) masked
  // throughout a message would garble it ("wh*** s***ding"), and is masked in the URL anyway.
  for (const { name, value } of secretParams(url)) {
    if (/password|passwd|pwd/i.test(name) || value.length >= 8) found.add(value);
  }
  for (const p of [...found]) {
    try {
      found.add(decodeURIComponent(p));
    } catch {
      // not percent-encoded: the raw form is enough
    }
  }
  return [...found].filter((p) => p.length > 0).sort((a, b) => b.length - a.length);
}

/** The Basic authorization token of user:password, as fetch and http_fetch.ts send it. */
function basicToken(user: string, password: string): string | undefined {
  try {
    const pair = `${decodeURIComponent(user)}:${decodeURIComponent(password)}`;
    return btoa(String.fromCharCode(...new TextEncoder().encode(pair)));
  } catch {
    return undefined;
  }
}

/**
 * A URL in free text: up to whitespace, a double quote, a backtick or an
 * angle bracket. Not up to a `'`, which a password or token may hold as
 * written (`redis://:it's@host`): one that closes a quoted URL is taken
 * back as the sentence's, with other trailing punctuation (maskUrlsIn).
 */
const URL_IN_TEXT = /\b(?:[a-z][a-z0-9+.-]*:\/\/|(?:https?|wss?|ftp):[/\\]*)[^\s"<>`]+/gi;

/**
 * `text` with every URL in it masked (see maskUrl): for messages made
 * elsewhere, such as an error thrown by a source or a fetch, that may quote
 * the URL they were given, password and all.
 *
 * @example
 * ```ts
 * import { maskUrlsIn } from "./mask_url.ts";
 * const text = maskUrlsIn("GET http://me:pw@example.com/feed: HTTP 500");
 * if (text !== "GET http://me:***@example.com/feed: HTTP 500") throw new Error(text);
 * ```
 */
export function maskUrlsIn(text: string): string {
  return text.replace(URL_IN_TEXT, (url) => {
    // Punctuation after a URL is the sentence's (`GET <url>: refused`), not the URL's last value.
    const tail = /[.,;:)!?']+$/.exec(url)?.[0] ?? "";
    return maskUrl(url.slice(0, url.length - tail.length)) + tail;
  });
}

/**
 * `text` with `url`'s secrets masked in every form they may take, raw or
 * percent-decoded, besides every URL in it: for an error about that URL.
 */
export function maskSecretsOf(text: string, url: string): string {
  let out = maskUrlsIn(text);
  for (const secret of urlSecrets(url)) {
    // Where it stands on its own: a password "pass" turned the message's "password" into
    // "***word", telling what it was.
    out = out.replace(
      new RegExp(`(?<![A-Za-z0-9])${escapeRegExp(secret)}(?![A-Za-z0-9])`, "g"),
      "***",
    );
  }
  return out;
}

/**
 * A copy of `error` whose message, stack and causes (to a few levels) went
 * through `mask`: for the `cause` of an error about a URL with a secret in
 * it. A library user who logs an error with its causes (Deno.inspect and
 * console.error print them) then sees no more than the message shows.
 */
export function maskedError(error: unknown, mask: (text: string) => string, depth = 0): Error {
  const source = error instanceof Error ? error : new Error(String(error));
  const copy = new Error(
    mask(source.message),
    depth < 4 && source.cause !== undefined
      ? { cause: maskedError(source.cause, mask, depth + 1) }
      : undefined,
  );
  copy.name = source.name;
  copy.stack = source.stack === undefined ? undefined : mask(source.stack);
  const code = (source as { code?: unknown }).code;
  if (code !== undefined) Object.assign(copy, { code });
  return copy;
}

/**
 * How to write a URL whose password holds a character that ends a URL's
 * parts: said where such a URL failed, since its masked form may look right.
 */
export const PASSWORD_ENCODING =
  "a password in it holding / ? # @ or % is written percent-encoded: / as %2F";

/** Shortest start of a key that withoutKey leaves out: shorter ones are too common to say. */
const KEY_START = 8;

/**
 * `text` without `key` (a key of 4 characters or more), nor the start of it
 * that a snippet cut short: a reply's first 60 characters, or V8's excerpt
 * of a body that is not JSON (`"ZZTOPSECRE"... is not valid JSON`), which a
 * whole-key replace does not find. At least KEY_START characters of it.
 */
export function withoutKey(text: string, key: string): string {
  if (key.length < 4) return text;
  for (const spelt of spellings(key)) {
    text = text.replaceAll(spelt, "[redacted]");
    for (let n = spelt.length - 1; n >= KEY_START; n--) {
      const start = spelt.slice(0, n);
      if (text.includes(start)) text = text.replaceAll(start, "[redacted]");
    }
  }
  return text;
}

/**
 * `key` as a server or a proxy may quote it back: as it is, percent-encoded
 * (`ab%2Fcd%2Bef` for `ab/cd+ef`), JSON-escaped, and base64 (alone, and as
 * the `Bearer <key>` header it was sent in).
 */
function spellings(key: string): string[] {
  const out = new Set([key, encodeURIComponent(key), JSON.stringify(key).slice(1, -1)]);
  for (const plain of [key, `Bearer ${key}`]) {
    try {
      out.add(btoa(plain).replace(/=+$/, ""));
    } catch { /* not Latin-1: sent as bytes no header carries */ }
  }
  return [...out];
}
