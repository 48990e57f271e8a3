import { redisOptions } from "../../engine/redis/connection.ts";
import assert from "node:assert/strict";
import {
  maskSecretsOf,
  maskUrl,
  maskUrlsIn,
  urlSecrets,
  withoutKey,
  withoutSecretParams,
} from "../../engine/mask_url.ts";

Deno.test("maskUrlsIn masks the password of every URL in a message and leaves the rest", () => {
  assert.equal(
    maskUrlsIn(
      `GET http://me:pw@a.example/feed: HTTP 503; then "https://tok@b.example/x.json" failed`,
    ),
    `GET http://me:***@a.example/feed: HTTP 503; then "https://***@b.example/x.json" failed`,
  );
  assert.equal(
    maskUrlsIn("https://a.example/feed?user=me&password=s3cret failed"),
    "https://a.example/feed?user=me&password=*** failed",
  );
  const plain = "GET https://example.com/feed.xml: HTTP 404 (see https://example.com/help)";
  assert.equal(maskUrlsIn(plain), plain);
  // A URL as the message ends, with no path: the userinfo still ends at the host.
  assert.equal(
    maskUrlsIn("cannot reach http://me:pw@host:8080"),
    "cannot reach http://me:***@host:8080",
  );
});

Deno.test("maskSecretsOf also masks the password where a message decoded it", () => {
  const url = "http://me:p%40ss@a.example/feed";
  assert.equal(
    maskSecretsOf(`fetch http://me:p%40ss@a.example/feed as me / p@ss: refused`, url),
    "fetch http://me:***@a.example/feed as me / ***: refused",
  );
});

Deno.test("maskSecretsOf masks a password where it stands alone, not inside a word of the message", () => {
  // "pass" turned "password" into "***word", and so told what the password was.
  assert.equal(
    maskSecretsOf("a password in it holding pass: refused", "redis://:pass@127.0.0.1:99999"),
    "a password in it holding ***: refused",
  );
});

Deno.test("a Redis URL whose port is out of range says so, and only a URL with a password hears of encoding", () => {
  assert.throws(
    () => redisOptions("redis://:pass@127.0.0.1:99999"),
    (e: Error) => e.message === "port 99999 is out of range: a port is 1 to 65535",
  );
  assert.throws(
    () => redisOptions("redis://exa mple:6379"),
    (e: Error) =>
      /^not a URL; expected redis:\/\/host:port, rediss:\/\/host:port or unix:\/\/\/path$/.test(
        e.message,
      ),
  );
});

Deno.test("a password holding an unencoded / is masked, though parsers refuse the URL", () => {
  // Base64 passwords hold "/" and "+": written unencoded, the authority ends at the "/".
  assert.equal(
    maskUrlsIn("cannot reach Redis at redis://:hun/ter2@127.0.0.1:6391: not a URL"),
    "cannot reach Redis at redis://:***@127.0.0.1:6391: not a URL",
  );
  assert.equal(
    maskUrlsIn("bad URL postgres://postgres:hun/ter2@127.0.0.1:5432/test"),
    "bad URL postgres://postgres:***@127.0.0.1:5432/test",
  );
  assert.equal(
    maskUrlsIn("redis://user:a/b+c==@db:6379/0 and redis://:x/y?z@db"),
    "redis://user:***@db:6379/0 and redis://:***@db",
  );
  assert.equal(
    maskUrlsIn(`expected a URL, got "https://u:tok/en@example.com/feed"`),
    `expected a URL, got "https://u:***@example.com/feed"`,
  );
  assert.equal(
    maskSecretsOf(
      "Invalid URL: 'redis://:hun/ter2@db' (password hun/ter2)",
      "redis://:hun/ter2@db",
    ),
    "Invalid URL: 'redis://:***@db' (password ***)",
  );
});

Deno.test("an @ in a web URL's path or query is not taken for a password", () => {
  for (
    const url of [
      "https://medium.com/@someone/feed",
      "https://example.com:8080/@someone/feed",
      "https://example.com/feed?email=a@b.example",
      "https://example.com/a:b/@c",
    ]
  ) assert.equal(maskUrlsIn(url), url);
});

Deno.test("keys and tokens some services take in the query are masked too", () => {
  assert.equal(
    maskUrlsIn(
      "GET https://api.example/feed?key=AIza123&q=news and https://x.example/a?access_token=t0k&api_key=k3y",
    ),
    "GET https://api.example/feed?key=***&q=news and https://x.example/a?access_token=***&api_key=***",
  );
  assert.equal(
    maskUrlsIn("https://acct.blob.example/c/f.json?sv=2024&sig=abc%2Bdef&se=2025"),
    "https://acct.blob.example/c/f.json?sv=2024&sig=***&se=2025",
  );
  // A parameter that only ends like one keeps its value.
  const plain = "https://example.com/search?monkey=1&tokens=2&page=3";
  assert.equal(maskUrlsIn(plain), plain);
});

Deno.test("passwords with / and @ or digits are masked; stacks, scoped packages and IPv6 are not touched", () => {
  const cases: [string, string][] = [
    // A password holding "@" and "/" in a connection URL.
    ["redis://:a@b/c@host:6379", "redis://:***@host:6379"],
    // Digits before the "/": a user's password, not a host's port.
    ["https://reader:2024/ab@example.com/feed.xml", "https://reader:***@example.com/feed.xml"],
    // An "@" later in the query or fragment does not hide the userinfo's.
    [
      "https://user:ab/cd@host.example/feed?from=@me",
      "https://user:***@host.example/feed?from=@me",
    ],
    [
      "http://user:ab/cd@example.com:8080/feed#frag@x",
      "http://user:***@example.com:8080/feed#frag@x",
    ],
    // Signed cloud URLs and a fragment's token.
    [
      "https://b.s3.example/k?X-Amz-Signature=abcdef123&X-Amz-Security-Token=tok123456",
      "https://b.s3.example/k?X-Amz-Signature=***&X-Amz-Security-Token=***",
    ],
    ["https://app.example/cb#access_token=ya29abc", "https://app.example/cb#access_token=***"],
  ];
  for (const [url, masked] of cases) assert.equal(maskUrlsIn(url), masked, url);
  for (
    const plain of [
      "file:///root/.cache/deno/npm/registry.npmjs.org/@opentelemetry/api/1.10.0/build/x.js:10:3",
      "wss://stream.example.com/v1/@user",
      "https://[::1]:8080/@user",
      "http://localhost:8080/@user/feed",
      "ftp://files.example.com/pub/x@y",
    ]
  ) assert.equal(maskUrlsIn(plain), plain);
});

Deno.test("a short query value is masked in its URL, not throughout a message", () => {
  const url = "https://news.example/rss?key=en";
  assert.equal(
    maskSecretsOf(`GET ${url}: connection reset when sending request`, url),
    "GET https://news.example/rss?key=***: connection reset when sending request",
  );
  const long = "https://news.example/rss?api_key=k3y-0123456789";
  assert.equal(
    maskSecretsOf("refused: bad key k3y-0123456789", long),
    "refused: bad key ***",
  );
});

Deno.test("a web URL's password is masked however many slashes or backslashes follow its scheme", () => {
  // URL parsers (fetch's, zod's z.url) read all of these as user bob, password hunter2,
  // and send them: the three-slash one was printed whole in errors, the report and traces.
  for (
    const url of [
      "http:///bob:hunter2@127.0.0.1:8765/fail",
      "https:////bob:hunter2@example.com/feed",
      "http:/bob:hunter2@example.com/feed",
      "http:bob:hunter2@example.com/feed",
      "http:\\\\bob:hunter2@example.com/feed",
    ]
  ) {
    assert.equal(new URL(url).password, "hunter2", url);
    const masked = maskUrl(url);
    assert.ok(!masked.includes("hunter2") && masked.includes("bob:***@"), masked);
    const text = maskUrlsIn(`GET ${url}: HTTP 500`);
    assert.ok(!text.includes("hunter2") && text.endsWith(": HTTP 500"), text);
    assert.deepEqual(urlSecrets(url), [btoa("bob:hunter2"), "hunter2"]);
    assert.equal(maskSecretsOf(`401 for bob:hunter2 at ${url}`, url).includes("hunter2"), false);
  }
  // file:/// has no authority: nothing to mask.
  assert.equal(maskUrl("file:///home/bob/feed.xml"), "file:///home/bob/feed.xml");
});

Deno.test("secret parameters are found by the words of their name, counts are not", () => {
  const url = "https://api.example/x?x-api-key=k1&apiKey=k2&private_token=k3&client_secret=k4" +
    "&X-Amz-Security-Token=k5&ke%79=k6&auth=k8&max_tokens=5&tokens=2&author=me&keyword=k";
  assert.equal(
    maskUrl(url),
    "https://api.example/x?x-api-key=***&apiKey=***&private_token=***&client_secret=***" +
      "&X-Amz-Security-Token=***&ke%79=***&auth=***&max_tokens=5&tokens=2&author=me&keyword=k",
  );
  // A header's name given as a parameter, and a list form of a key.
  assert.equal(
    maskUrl("https://api.example/x?Authorization=Bearer%20T1&api_key[]=T2&tag[]=news"),
    "https://api.example/x?Authorization=***&api_key[]=***&tag[]=news",
  );
  // A ; parameter ends where the path or the query goes on.
  assert.equal(
    maskUrl("https://shop.example/cart;jsessionid=A1B2?x=1&token=T"),
    "https://shop.example/cart;jsessionid=***?x=1&token=***",
  );
  // The last word of a name says what it holds.
  assert.equal(
    maskUrl("https://a.example/?token_count=5&token_type=bearer&session_id=S1"),
    "https://a.example/?token_count=5&token_type=bearer&session_id=***",
  );
});

Deno.test("every kind of key a service takes in the query is masked, and passphrases and appids", () => {
  const url = "https://api.example/x?access_key=AK1&subscription-key=SK1&auth_key=AU1" +
    "&secret_key=SE1&private_key=PK1&appid=AP1&pass=PA1&passphrase=PH1&sort=key&keys=2";
  assert.equal(
    maskUrl(url),
    "https://api.example/x?access_key=***&subscription-key=***&auth_key=***&secret_key=***" +
      "&private_key=***&appid=***&pass=***&passphrase=***&sort=key&keys=2",
  );
});

Deno.test("a secret's word run into another is masked: libpq's sslpassword, an accesstoken", () => {
  const url = "postgres://app@db:5432/x?sslpassword=KP1&dbpasswd=DP1&clientsecret=CS1" +
    "&accesstoken=AT1&sslmode=require&maxtokens=5&nexttokens=2";
  assert.equal(
    maskUrl(url),
    "postgres://app@db:5432/x?sslpassword=***&dbpasswd=***&clientsecret=***&accesstoken=***" +
      "&sslmode=require&maxtokens=5&nexttokens=2",
  );
});

Deno.test("a key run into another word is masked: appkey, secretkey, accesskey; a jwt too", () => {
  const url = "https://api.example/x?appkey=A1&secretkey=S1&authkey=U1&accesskey=C1" +
    "&privatekey=P1&passkey=K1&licensekey=L1&clientkey=CK1&jwt=J1&monkey=m&hockey=h";
  assert.equal(
    maskUrl(url),
    "https://api.example/x?appkey=***&secretkey=***&authkey=***&accesskey=***" +
      "&privatekey=***&passkey=***&licensekey=***&clientkey=***&jwt=***&monkey=m&hockey=h",
  );
  assert.equal(
    withoutSecretParams("https://a.example/p?appkey=A1&id=7&secretkey=S1"),
    "https://a.example/p?id=7",
  );
});

Deno.test("a secret in a URL given as another parameter's value is masked", () => {
  // `?next=/x?api_key=…` ran on as next's value, unread.
  assert.equal(
    maskUrl("https://a.example/redir?s=302&to=http://b.example/x?token=TokSecret987654&n=1"),
    "https://a.example/redir?s=302&to=http://b.example/x?token=***&n=1",
  );
  assert.equal(
    maskUrl("https://a.example/?next=/x?api_key=H9"),
    "https://a.example/?next=/x?api_key=***",
  );
  assert.deepEqual(urlSecrets("https://a.example/?next=/x?api_key=HHHH9999"), ["HHHH9999"]);
  assert.equal(
    withoutSecretParams("https://a.example/?next=/x?api_key=H9&id=7"),
    "https://a.example/?next=/x&id=7",
  );
  // Nested twice, or a ; parameter in the nested URL: the item's URL loses it as the log does.
  for (
    const [url, masked, stripped] of [
      [
        "https://a.example/p2?r=/login?next=/feed?api_key=SECRETKEY654321",
        "https://a.example/p2?r=/login?next=/feed?api_key=***",
        "https://a.example/p2?r=/login?next=/feed",
      ],
      [
        "https://a.example/p3?next=/feed?id=1;access_token=SECRETTOKEN98765",
        "https://a.example/p3?next=/feed?id=1;access_token=***",
        "https://a.example/p3?next=/feed?id=1",
      ],
      [
        "https://a.example/p4?next=/feed?api_key=K1&id=2",
        "https://a.example/p4?next=/feed?api_key=***&id=2",
        "https://a.example/p4?next=/feed&id=2",
      ],
      // Percent-encoded, as a URL given as a parameter usually is.
      [
        "https://a.example/p?next=https%3A%2F%2Fapi.example%2Ffeed%3Fapi_key%3DSECRETKEY123456",
        "https://a.example/p?next=https%3A%2F%2Fapi.example%2Ffeed%3Fapi_key%3D***",
        "https://a.example/p?next=https%3A%2F%2Fapi.example%2Ffeed",
      ],
      [
        "https://a.example/p?next=%2Ffeed%3Fid%3D1%26token%3DT0K3N5ECRET&x=1",
        "https://a.example/p?next=%2Ffeed%3Fid%3D1%26token%3D***&x=1",
        "https://a.example/p?next=%2Ffeed%3Fid%3D1&x=1",
      ],
    ]
  ) {
    assert.equal(maskUrl(url), masked);
    assert.equal(withoutSecretParams(url), stripped);
  }
  assert.deepEqual(
    urlSecrets("https://a.example/p?next=%2Ffeed%3Fapi_key%3DSECRETKEY777777"),
    ["SECRETKEY777777"],
  );
  // A Latin-1 escape that does not decode as UTF-8, twice encoded, and a + kept as written.
  for (
    const [url, masked, stripped] of [
      [
        "https://a.example/p?next=%2Frecherche%3Fq%3Dcaf%E9%26api_key%3DSECRETKEY123",
        "https://a.example/p?next=%2Frecherche%3Fq%3Dcaf%E9%26api_key%3D***",
        "https://a.example/p?next=%2Frecherche%3Fq%3Dcaf%E9",
      ],
      [
        "https://a.example/p?u=https%253A%252F%252Fb.example%252Fx%253Fapi_key%253DDOUBLE12345",
        "https://a.example/p?u=https%253A%252F%252Fb.example%252Fx%253Fapi_key%253D***",
        "https://a.example/p?u=https%253A%252F%252Fb.example%252Fx",
      ],
      [
        "https://a.example/p?next=%2Fs%3Fq%3Da+b%26token%3DT0K3NABCDEF%26page%3D2",
        "https://a.example/p?next=%2Fs%3Fq%3Da+b%26token%3D***%26page%3D2",
        "https://a.example/p?next=%2Fs%3Fq%3Da+b%26page%3D2",
      ],
    ]
  ) {
    assert.equal(maskUrl(url), masked);
    assert.equal(withoutSecretParams(url), stripped);
  }
  // A secret holding an &, ; or ? of its own (encoded once more) is masked and left out whole,
  // and nothing of the rest of the value changes.
  const amp = "https://a.example/p?next=%2Fs%3Fpassword%3Dp%2526ss%253Bw0rd%26id%3D2";
  assert.equal(maskUrl(amp), "https://a.example/p?next=%2Fs%3Fpassword%3D***%26id%3D2");
  assert.equal(withoutSecretParams(amp), "https://a.example/p?next=%2Fs%3Fid%3D2");
  assert.ok(urlSecrets(amp).includes("p&ss;w0rd"), String(urlSecrets(amp)));
  for (
    const [value, stripped] of [
      ["%2Fs%3Fq%3Dwhy%253F%26token%3Dabcdefgh", "%2Fs%3Fq%3Dwhy%253F"],
      ["%2Fs%3Ftoken%3Dabcdefgh%26q%3Dwhy%253F", "%2Fs%3Fq%3Dwhy%253F"],
      ["%2Fs%3Fq%3Da%253F%2526b%26token%3Dabcdefgh", "%2Fs%3Fq%3Da%253F%2526b"],
    ]
  ) {
    assert.equal(
      withoutSecretParams(`https://a.example/p?next=${value}`),
      `https://a.example/p?next=${stripped}`,
    );
  }
  // An encoded & in a search phrase opens no query: nothing there is a parameter.
  for (const q of ["piano%26key%3Dc-major", "x%26signature%3Dyes"]) {
    const url = `https://a.example/search?q=${q}`;
    assert.equal(maskUrl(url), url);
    assert.equal(withoutSecretParams(url), url);
  }
  // A link nested past reason runs no stack out (RangeError at 33,000), and hides what is deep.
  const deep = "https://a.example/p?a=" + "x?a=".repeat(33_000) + "y&api_key=K";
  assert.equal(maskUrl(deep).endsWith("a=***&api_key=***"), true);
  assert.doesNotMatch(withoutSecretParams(deep), /api_key|y$/);
  assert.deepEqual(urlSecrets(deep.replace("api_key=K", "api_key=KEYKEYKEY")), ["KEYKEYKEY"]);
  // A parameter whose value only looks encoded is left as it is.
  const plain = "https://a.example/s?q=50%25%3F&next=%2Fhome";
  assert.equal(maskUrl(plain), plain);
  assert.equal(withoutSecretParams(plain), plain);
});

Deno.test("urlSecrets holds the Basic token a server may echo back from the request", () => {
  const url = "http://bob:PASSWORD999@feeds.example/x";
  const basic = btoa("bob:PASSWORD999");
  assert.ok(urlSecrets(url).includes(basic), urlSecrets(url).join(" "));
  assert.equal(
    maskSecretsOf(`403 for Basic ${basic} (bob:PASSWORD999)`, url),
    "403 for Basic *** (bob:***)",
  );
});

Deno.test("withoutKey leaves out a key, and the start of it that a snippet cut short", () => {
  const key = "ZZTOPSECRET9876543210abc";
  assert.equal(
    withoutKey(`Unexpected token 'Z', "ZZTOPSECRE"... is not valid JSON; again ${key}`, key),
    `Unexpected token 'Z', "[redacted]"... is not valid JSON; again [redacted]`,
  );
  // Under 8 characters a start is too common to say: left as it is.
  assert.equal(withoutKey("ZZTOPSE", key), "ZZTOPSE");
  assert.equal(withoutKey("nothing here", "abc"), "nothing here");
});

Deno.test("withoutKey leaves out a key quoted back percent-encoded, JSON-escaped or in base64", () => {
  // A proxy's 401 quoting the header it got: the key leaked whole in an embed stage's error.
  const key = "ab/cd+ef/SECRETKEYVALUE==";
  for (
    const echoed of [
      `401: bad header Bearer%20${encodeURIComponent(key)}`,
      `{"error":"bad key ${JSON.stringify(key).slice(1, -1)}"}`,
      `Invalid api-key: [redacted] (${encodeURIComponent(key)})`,
      `auth was ${btoa(`Bearer ${key}`)}`,
      `key ${btoa(key)}`,
    ]
  ) {
    const said = withoutKey(echoed, key);
    assert.ok(!said.includes("SECRETKEY"), said);
    assert.ok(!said.includes(btoa(key).slice(0, 12)), said);
    assert.ok(!said.includes(btoa(`Bearer ${key}`).slice(8, 20)), said);
    assert.match(said, /\[redacted\]/);
  }
});

Deno.test("maskUrlsIn masks a password or token holding a ', and keeps the quotes around a URL", () => {
  // ' is a legal userinfo character the URL class keeps as written.
  assert.equal(
    maskUrlsIn("cannot reach redis://:RRPASS'WORD_S3cr3t@127.0.0.1:16390 now"),
    "cannot reach redis://:***@127.0.0.1:16390 now",
  );
  assert.equal(
    maskUrlsIn("x https://h/?access_token=abc'defghijk y"),
    "x https://h/?access_token=*** y",
  );
  assert.equal(
    maskUrlsIn("fetching 'http://me:pw@h/a', then 'https://h/b?key=k1'."),
    "fetching 'http://me:***@h/a', then 'https://h/b?key=***'.",
  );
});
