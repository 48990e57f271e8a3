import assert from "node:assert/strict";
import { decodeHtml, metaCharset } from "../../../adapters/sources/_decode_html.ts";
import { charsetOf } from "../../../adapters/sources/_decode_xml.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);
const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const page = (head: string, body = "<p>déjà vu, naïve café</p>") =>
  `<html><head>${head}</head><body>${body}</body></html>`;

Deno.test("a BOM outranks every label", () => {
  const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...utf8(page(`<meta charset="koi8-r">`))]);
  const d = decodeHtml(bytes, "windows-1251");
  assert.equal(d.from, "bom");
  assert.ok(d.text.startsWith("<html>") && d.text.includes("déjà vu"));
});

Deno.test("valid non-ASCII UTF-8 is UTF-8 whatever the meta or the header says", () => {
  const d = decodeHtml(utf8(page(`<meta charset="iso-8859-1">`)), "iso-8859-1");
  assert.deepEqual([d.encoding, d.from], ["utf-8", "utf-8 check"]);
  assert.ok(d.text.includes("déjà vu, naïve café"));
});

Deno.test("bytes that are not UTF-8 skip a utf-8 label and fall to the next evidence", () => {
  const lying = decodeHtml(latin1(page(`<meta charset="utf-8">`)), "utf-8");
  assert.deepEqual([lying.encoding, lying.from], ["windows-1252", "default"]);
  assert.ok(lying.text.includes("déjà vu, naïve café"));
  const headerOverMeta = decodeHtml(latin1(page(`<meta charset="utf-8">`)), "iso-8859-1");
  assert.equal(headerOverMeta.from, "http header");
});

Deno.test("UTF-8 with a stray byte is UTF-8, the byte U+FFFD; a page that says utf-8 over Latin-1 says where", () => {
  // One 0xA0 in a UTF-8 page labelled utf-8 turned every accent of it into mojibake ("cafÃ©").
  const bytes = utf8(page(`<meta charset="utf-8">`, "<p>déjà vu, naïve café \u0000</p>"));
  bytes[bytes.indexOf(0)] = 0xa0;
  const stray = decodeHtml(bytes, "utf-8");
  assert.deepEqual([stray.encoding, stray.from, stray.replaced], ["utf-8", "utf-8 check", 1]);
  assert.ok(stray.text.includes("déjà vu, naïve café \uFFFD"), stray.text);
  // Latin-1 bytes form no valid sequence: windows-1252, and the label it passed over is named.
  const lying = decodeHtml(latin1(page("")), "utf-8");
  assert.deepEqual([lying.encoding, lying.falseUtf8], ["windows-1252", "http header"]);
  assert.equal(decodeHtml(latin1(page(`<meta charset="utf-8">`))).falseUtf8, "meta");
  // Labelled Latin-1, with a UTF-8 footer (a theme's ©, —, “ ”): the label holds.
  const mixed = new Uint8Array([
    ...latin1(page("", "<p>Le café de José à Paris.</p>")),
    ...utf8("<footer>© 2026 — “Paris” → more…</footer>"),
  ]);
  const labelled = decodeHtml(mixed, "iso-8859-1");
  assert.deepEqual([labelled.encoding, labelled.from], ["windows-1252", "http header"]);
  assert.ok(labelled.text.includes("Le café de José à Paris."), labelled.text);
});

Deno.test("the header outranks the meta, and the meta names a legacy charset", () => {
  const koi8 = new Uint8Array([
    ...latin1(page(`<meta charset="koi8-r">`, "<p>")),
    0xf0,
    0xd2,
    0xc9,
  ]);
  assert.deepEqual([decodeHtml(koi8).from, decodeHtml(koi8).text.slice(-3)], ["meta", "При"]);
  const overridden = decodeHtml(koi8, "windows-1251");
  assert.deepEqual([overridden.from, overridden.encoding], ["http header", "windows-1251"]);
});

Deno.test("all-ASCII bytes follow their label (ISO-2022-JP is 7-bit)", () => {
  const jis = latin1(page(`<meta charset="iso-2022-jp">`, "<p>\x1b$B$3$s$K$A$O\x1b(B</p>"));
  assert.ok(decodeHtml(jis).text.includes("<p>こんにちは</p>"));
  assert.equal(decodeHtml(utf8(page(""))).encoding, "utf-8");
});

Deno.test("unknown and UTF-16 labels without a BOM are skipped", () => {
  const d = decodeHtml(latin1(page(`<meta charset="utf-16">`)), "x-no-such-charset");
  assert.deepEqual([d.encoding, d.from], ["windows-1252", "default"]);
});

Deno.test("the meta is found past 1 KiB, but not in comments or scripts", () => {
  const far = `<html class="${"x".repeat(8000)}"><head><meta charset="windows-1251">`;
  assert.equal(metaCharset(latin1(far)), "windows-1251");
  const hidden =
    `<!-- <meta charset="koi8-r"> --><script>var m = '<meta charset="big5">';</script>`;
  assert.equal(metaCharset(latin1(hidden)), undefined);
  const equiv = `<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-15">`;
  assert.equal(metaCharset(latin1(equiv)), "ISO-8859-15");
});

Deno.test("the charset of a Content-Type", () => {
  assert.equal(charsetOf(`text/html; charset="UTF-8"`), "UTF-8");
  assert.equal(charsetOf("text/html;charset=iso-8859-1; q=1"), "iso-8859-1");
  assert.equal(charsetOf("text/html"), undefined);
  assert.equal(charsetOf(null), undefined);
});
