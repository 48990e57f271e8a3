/**
 * Connection URLs fit for logs and errors, for every adapter that takes one
 * (Redis, Postgres, Qdrant): one reading of where a secret can sit.
 */

/** Where a URL's userinfo sits (`scheme://<userinfo>@host`) and its parts. */
interface Userinfo {
  start: number;
  end: number;
  user: string;
  password?: string;
}

function userinfoOf(url: string): Userinfo | undefined {
  const scheme = url.indexOf("://");
  if (scheme < 0) return undefined;
  const start = scheme + 3;
  const slash = url.indexOf("/", start);
  const authority = url.slice(start, slash < 0 ? undefined : slash);
  // The userinfo ends at the last "@" of the authority: a password may hold one.
  let at = authority.lastIndexOf("@");
  if (at < 0 && slash >= 0) at = atPastSlash(url, start, slash);
  if (at < 0) return undefined;
  const userinfo = url.slice(start, start + at);
  const colon = userinfo.indexOf(":");
  const end = start + at;
  return colon < 0
    ? { start, end, user: userinfo }
    : { start, end, user: userinfo.slice(0, colon), password: userinfo.slice(colon + 1) };
}

/**
 * A password holding an unencoded "/" (base64 ones do) ends the authority
 * early, so parsers refuse the URL and their error quotes it whole:
 * `redis://:ab/cd@host`. Where an "@" follows the first "/", this reads
 * the text up to it as userinfo, unless it cannot be one: in a web URL
 * (`https://medium.com/@user`, `https://host:8080/@user`) only when a ":"
 * before the "/" is not a port. A connection URL (Redis, Postgres) has no
 * "@" in its path or query, so there any last "@" counts, and a URL
 * masked beyond its userinfo is the price of never showing a password.
 * Returns the "@"'s offset from `start`, or -1.
 */
function atPastSlash(url: string, start: number, slash: number): number {
  const at = url.lastIndexOf("@");
  if (at < slash) return -1;
  if (/^https?:\/\//i.test(url)) {
    const colon = url.indexOf(":", start);
    if (colon < 0 || colon > slash) return -1;
    if (colon > start && /^\d*$/.test(url.slice(colon + 1, slash))) return -1; // host:port/
    const query = url.slice(slash).search(/[?#]/);
    if (query >= 0 && slash + query < at) return -1;
  }
  return at - start;
}

/**
 * In a Postgres URL a lone userinfo names the role (postgres://app@db);
 * elsewhere it may be the secret itself (redis://s3cret@host).
 */
const namesUser = (url: string) => /^postgres(ql)?:\/\//i.test(url);

/**
 * Query parameters that carry a secret: a password, or an API key or token
 * some services take in the URL (`?key=`, `?api_key=`, `?access_token=`,
 * a signed URL's `sig=`).
 */
const PASSWORD_PARAM =
  /([?&](?:password|passwd|pwd|token|access_token|auth|auth_token|api_key|apikey|api-key|key|secret|client_secret|sig|signature)=)([^&#]*)/gi;

/**
 * The URL with its password replaced by `***`: in the userinfo, as a
 * `password=` parameter (or a key or token one: see PASSWORD_PARAM), or a
 * lone userinfo that may be one.
 *
 * @example
 * ```ts
 * import { maskUrl } from "./mask_url.ts";
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
  return out.replace(PASSWORD_PARAM, "$1***");
}

/**
 * Every form of the URL's password that a driver's message may repeat, raw
 * and percent-decoded, longest first.
 */
export function urlSecrets(url: string): string[] {
  const found = new Set<string>();
  const u = userinfoOf(url);
  if (u?.password !== undefined) found.add(u.password);
  else if (u && !namesUser(url)) found.add(u.user);
  for (const m of url.matchAll(PASSWORD_PARAM)) found.add(m[2]);
  for (const p of [...found]) {
    try {
      found.add(decodeURIComponent(p));
    } catch {
      // not percent-encoded: the raw form is enough
    }
  }
  return [...found].filter((p) => p.length > 0).sort((a, b) => b.length - a.length);
}

/** A URL in free text: up to whitespace, a quote or an angle bracket. */
const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]+/gi;

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
  return text.replace(URL_IN_TEXT, (url) => maskUrl(url));
}

/**
 * `text` with `url`'s secrets masked in every form they may take, raw or
 * percent-decoded, besides every URL in it: for an error about that URL.
 */
export function maskSecretsOf(text: string, url: string): string {
  let out = maskUrlsIn(text);
  for (const secret of urlSecrets(url)) out = out.split(secret).join("***");
  return out;
}
