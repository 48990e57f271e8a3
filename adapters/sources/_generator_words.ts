/**
 * Vocabulary and sentence templates for the generator source: tech-news
 * shaped text from combinations large enough that two generated articles
 * share almost no three-word runs. Companies, products and people are made
 * up; technologies are real names used generically.
 */

export type Rand = () => number;

export const pick = <T>(r: Rand, list: readonly T[]): T => list[(r() * list.length) | 0];
const int = (r: Rand, lo: number, hi: number): number => lo + ((r() * (hi - lo + 1)) | 0);

/** The publications items appear on. */
export const SITES: readonly { domain: string; name: string }[] = [
  { domain: "techpulse.io", name: "TechPulse" },
  { domain: "devchronicle.com", name: "Dev Chronicle" },
  { domain: "bytewire.news", name: "ByteWire" },
  { domain: "stackdaily.dev", name: "Stack Daily" },
  { domain: "siliconledger.com", name: "Silicon Ledger" },
  { domain: "cloudbeat.net", name: "CloudBeat" },
  { domain: "kernelnotes.org", name: "Kernel Notes" },
  { domain: "datadispatch.com", name: "Data Dispatch" },
  { domain: "circuitreview.com", name: "Circuit Review" },
  { domain: "openheadlines.org", name: "Open Headlines" },
  { domain: "startupwire.co", name: "The Startup Wire" },
  { domain: "cipherdesk.com", name: "Cipher Desk" },
];

// deno-fmt-ignore
export const FIRST_NAMES = [
  "Ada", "Ben", "Chen", "Dana", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kavya", "Liam",
  "Maya", "Nikolai", "Olu", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Viktor", "Wen",
  "Ximena", "Yusuf", "Zoe", "Amara", "Bruno", "Carmen", "Dmitri", "Esther", "Felix", "Gabriela",
  "Hassan", "Ingrid", "Jamal", "Keiko", "Lucas", "Mei", "Noah", "Oksana", "Pablo", "Rania",
  "Soren", "Thandi", "Arjun", "Beatriz", "Cormac", "Divya", "Emeka", "Freya", "Goran", "Hana",
  "Ivan", "Julia",
] as const;

// deno-fmt-ignore
export const LAST_NAMES = [
  "Okafor", "Lindqvist", "Nakamura", "Moreau", "Kowalski", "Haddad", "Fischer", "Tanaka", "Silva",
  "Brennan", "Iyer", "Novak", "Castillo", "Andersen", "Mensah", "Petrov", "Rossi", "Schmidt",
  "Zhang", "Walsh", "Kaur", "Dubois", "Yilmaz", "Costa", "Hughes", "Van Dijk", "Sato", "Alvarez",
  "Bauer", "Chowdhury", "Eriksen", "Gallagher", "Horvat", "Ibrahim", "Jensen", "Kim", "Lopez",
  "Murphy", "Nguyen", "Oyelaran", "Park", "Quist", "Reyes", "Suzuki", "Torres", "Ueda", "Vasquez",
  "Weber",
] as const;

// deno-fmt-ignore
export const COMPANIES = [
  "Nimbus Labs", "Quantiva", "Helixor", "Arcwell", "Brightloop", "Corvane", "Datavine",
  "Embergate", "Fluxion", "Gridform", "Hollowpeak", "Ironleaf", "Jetstream Systems", "Kestrel AI",
  "Lumenworks", "Monolith Cloud", "Northwind Robotics", "Orbitra", "Pinegrove Software",
  "Quillstack", "Redshift Bio", "Saltmarsh Networks", "Tidewater Data", "Umbra Security",
  "Vantage Silicon", "Wavecrest", "Xylo Games", "Yardbird Payments", "Zephyr Compute",
  "Aperture Mesh", "Bluefin Analytics", "Cobalt Forge", "Driftwood Labs", "Everpine", "Foxhollow",
  "Granite Peak Semiconductor", "Harborlight", "Inkwell", "Juniper Grid", "Keystone Cloud",
  "Lattice Works", "Meridian Health Tech", "Nightjar", "Oakridge Quantum", "Parallax Motors",
  "Quarry Logic", "Riverbend", "Sable Systems", "Tessellate", "Upland Energy", "Veridian Space",
  "Willowmere", "Yellowfin Finance", "Zenith Edge",
] as const;

/** Technologies and the topic each is tagged with. */
export const TECHS: readonly (readonly [string, string])[] = [
  ["Rust", "languages"],
  ["Go", "languages"],
  ["Python", "languages"],
  ["TypeScript", "languages"],
  ["Kotlin", "languages"],
  ["Swift", "languages"],
  ["Zig", "languages"],
  ["Elixir", "languages"],
  ["Haskell", "languages"],
  ["OCaml", "languages"],
  ["Java", "languages"],
  ["C++", "languages"],
  ["WebAssembly", "web"],
  ["React", "web"],
  ["Svelte", "web"],
  ["Deno", "web"],
  ["Node.js", "web"],
  ["HTTP/3", "web"],
  ["GraphQL", "web"],
  ["Kubernetes", "cloud"],
  ["Docker", "cloud"],
  ["Terraform", "cloud"],
  ["Envoy", "cloud"],
  ["serverless functions", "cloud"],
  ["PostgreSQL", "databases"],
  ["SQLite", "databases"],
  ["Redis", "databases"],
  ["ClickHouse", "databases"],
  ["DuckDB", "databases"],
  ["Cassandra", "databases"],
  ["Kafka", "data"],
  ["Apache Spark", "data"],
  ["Apache Arrow", "data"],
  ["Flink", "data"],
  ["the Linux kernel", "os"],
  ["FreeBSD", "os"],
  ["systemd", "os"],
  ["eBPF", "os"],
  ["Git", "devtools"],
  ["Bazel", "devtools"],
  ["Nix", "devtools"],
  ["LLVM", "devtools"],
  ["OpenSSL", "security"],
  ["WireGuard", "security"],
  ["passkeys", "security"],
  ["TLS 1.3", "security"],
  ["RISC-V", "hardware"],
  ["ARM64", "hardware"],
  ["Raspberry Pi", "hardware"],
  ["USB-C", "hardware"],
  ["Wi-Fi 7", "hardware"],
  ["CUDA", "ai"],
  ["PyTorch", "ai"],
  ["large language models", "ai"],
  ["vector databases", "ai"],
  ["on-device inference", "ai"],
  ["Android", "mobile"],
  ["iOS", "mobile"],
  ["5G modems", "mobile"],
  ["quantum error correction", "quantum"],
  ["reusable rockets", "space"],
  ["satellite broadband", "space"],
  ["solid-state batteries", "energy"],
  ["grid-scale storage", "energy"],
] as const;

/** Programming languages, for "rewritten in". */
// deno-fmt-ignore
const LANGUAGES = [
  "Rust", "Go", "Python", "TypeScript", "Kotlin", "Swift", "Zig", "Elixir", "Haskell", "OCaml",
  "Java", "C++", "C#", "Scala", "Julia", "Gleam",
] as const;

/** Software that has version numbers. */
// deno-fmt-ignore
const VERSIONED = [
  "Rust", "Go", "Python", "TypeScript", "Kotlin", "Swift", "Zig", "Elixir", "Deno", "Node.js",
  "Kubernetes", "Docker Engine", "Terraform", "Envoy", "PostgreSQL", "SQLite", "Redis",
  "ClickHouse", "DuckDB", "Kafka", "Apache Spark", "Apache Arrow", "Flink", "FreeBSD", "systemd",
  "Git", "Bazel", "Nix", "LLVM", "OpenSSL", "WireGuard", "PyTorch", "Android", "React", "Svelte",
  "Linux",
] as const;

// deno-fmt-ignore
export const TAGS = [
  "open-source", "startups", "policy", "funding", "research", "performance", "privacy", "outages",
  "acquisitions", "layoffs", "benchmarks", "releases", "infrastructure", "developer-experience",
] as const;

// deno-fmt-ignore
const FEATURES = [
  "faster incremental builds", "a new garbage collector", "native async iterators",
  "zero-downtime upgrades", "built-in vector search", "post-quantum key exchange",
  "smaller binaries", "a rewritten query planner", "GPU offloading", "structured concurrency",
  "pattern matching", "a stable plugin API", "row-level security", "lock-free queues",
  "SIMD acceleration", "clearer error messages", "offline sync", "memory tagging",
  "incremental compilation", "a redesigned scheduler", "reproducible builds", "hot code reloading",
  "columnar storage", "encrypted backups", "per-tenant rate limits", "a faster JSON parser",
  "streaming replication", "hardware-backed attestation", "a built-in test runner",
  "lazy loading of modules",
] as const;

// deno-fmt-ignore
const OBJECTS = [
  "a self-hosted build farm", "its internal query engine", "a privacy-preserving analytics stack",
  "an open telemetry pipeline", "its recommendation system", "a chip for on-device inference",
  "a drop-in replacement for its billing system", "its mobile checkout flow",
  "a fleet of edge servers", "its search infrastructure", "a developer platform for small teams",
  "its fraud detection models", "a low-latency trading gateway", "a managed vector store",
  "a code review assistant", "its identity service", "a battery management controller",
  "a satellite ground station network", "an open hardware reference design",
  "its content delivery network", "a data clean room", "its customer support tooling",
  "a cross-platform UI toolkit", "a real-time collaboration engine",
] as const;

// deno-fmt-ignore
const METRICS = [
  "cloud costs", "p99 latency", "build times", "memory usage", "cold-start times", "on-call pages",
  "energy use", "deploy times", "storage bills", "CI minutes", "error rates", "page load times",
] as const;

// deno-fmt-ignore
const GROUPS = [
  "startups", "game studios", "banks", "hospitals", "indie developers", "data teams",
  "embedded engineers", "SRE teams", "universities", "city governments", "newsrooms", "hobbyists",
  "open-source maintainers", "logistics firms", "insurers", "retailers",
] as const;

// deno-fmt-ignore
const CITIES = [
  "Berlin", "Lagos", "Toronto", "Singapore", "Austin", "Warsaw", "Bangalore", "Lisbon", "Seoul",
  "Nairobi", "Melbourne", "Montreal", "Tallinn", "Osaka", "Bogotá", "Dublin", "Helsinki", "Accra",
] as const;

// deno-fmt-ignore
const PRACTICES = [
  "microservices", "monorepos", "feature flags", "serverless cold starts",
  "chasing full test coverage", "code review backlogs", "flaky CI pipelines", "vendor lock-in",
  "manual release trains", "over-provisioned clusters", "weekly dependency upgrades",
  "trunk-based development", "blameless postmortems", "pair programming", "infrastructure as code",
] as const;

// deno-fmt-ignore
const FLAWS = [
  "a use-after-free bug", "a timing side channel", "a supply-chain backdoor",
  "an integer overflow", "a cache poisoning flaw", "a privilege escalation bug", "a memory leak",
  "a race condition", "a deserialization flaw", "an authentication bypass",
] as const;

// deno-fmt-ignore
const IMPACTS = [
  "exposes private keys", "lets attackers skip login", "crashes servers remotely",
  "leaks session tokens", "corrupts backups silently", "slows every request by half",
  "allows code execution from a crafted file", "reveals other tenants' metadata",
] as const;

// deno-fmt-ignore
const REGULATORS = [
  "European regulators", "A federal judge", "State attorneys general",
  "The national data protection authority", "A trade watchdog", "Lawmakers in Brussels",
  "The competition authority", "A parliamentary committee",
] as const;

// deno-fmt-ignore
const ISSUES = [
  "data retention", "app store rules", "facial recognition", "ad tracking", "interoperability",
  "age verification", "right to repair", "cloud licensing", "default search deals",
  "chip export rules",
] as const;

// deno-fmt-ignore
const PRODUCTS = [
  "Atlas", "Beacon", "Cinder", "Drift", "Ember", "Flux", "Glacier", "Harbor", "Ion", "Juno",
  "Kite", "Lantern", "Mosaic", "Nova", "Orchid", "Pulse", "Quartz", "Relay", "Summit", "Tundra",
  "Vega",
] as const;

// deno-fmt-ignore
const PLATFORMS = [
  "Linux", "macOS", "Windows", "Android", "the browser", "ARM laptops", "smart TVs",
  "game consoles",
] as const;

// deno-fmt-ignore
const LEGACY = [
  "32-bit systems", "Python 2", "Internet Explorer", "older Intel Macs", "TLS 1.0", "CentOS 7",
  "Java 8", "legacy BIOS boot",
] as const;

// deno-fmt-ignore
const WORKLOADS = [
  "log analytics", "real-time bidding", "mobile backend", "time-series", "batch ETL",
  "game server", "full-text search", "video transcoding", "genomics", "recommendation",
] as const;

// deno-fmt-ignore
const ROLES = [
  "CTO", "staff engineer", "head of infrastructure", "security researcher", "product lead",
  "VP of engineering", "co-founder", "principal scientist", "developer advocate",
  "release manager",
] as const;

// deno-fmt-ignore
const EVENTS = [
  "a string of outages", "a security audit", "a surprise leadership change", "a funding crunch",
  "a public bug bounty", "a licence dispute", "a record quarter", "a failed product launch",
  "a large customer migration", "a community fork",
] as const;

// deno-fmt-ignore
const PROBLEMS = [
  "slower startup times", "broken plugins", "higher memory use", "failed migrations",
  "missing log lines", "intermittent timeouts", "duplicated notifications",
] as const;

// deno-fmt-ignore
const QUOTES = [
  "painful but worth it", "the best decision we made this year", "a slow grind",
  "far easier than expected", "a lesson in humility", "overdue by about five years",
] as const;

// deno-fmt-ignore
const COMPONENTS = [
  "storage engine", "network stack", "scheduler", "package manager", "query optimizer",
  "authentication layer", "rendering pipeline", "billing service", "job queue", "compiler backend",
] as const;

const LICENCES = ["MIT", "Apache 2.0", "BSD", "MPL 2.0", "GPLv3", "AGPL"] as const;
// deno-fmt-ignore
const MONTHS = [
  "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
  "November", "December",
] as const;
// deno-fmt-ignore
const EFFECTS = [
  "lower bills", "cut response times", "simplify upgrades", "reduce outages", "save disk space",
  "shorten onboarding", "improve battery life",
] as const;
/** Each fits "a ___ choice" and "called the decision ___". */
// deno-fmt-ignore
const ADJECTIVES = [
  "pragmatic", "risky", "bold", "costly", "welcome", "premature", "sensible", "safe", "timely",
] as const;

const year = (r: Rand) => String(int(r, 2023, 2026));
const version = (r: Rand) => `${int(r, 1, 24)}.${int(r, 0, 12)}`;
const person = (r: Rand) => `${pick(r, FIRST_NAMES)} ${pick(r, LAST_NAMES)}`;
const tech = (r: Rand) => pick(r, TECHS)[0];
const versioned = (r: Rand) => pick(r, VERSIONED);

/**
 * Headline templates. Each draws several slots, so two items rarely share a
 * headline, and every headline is well over five characters.
 */
export const TITLE_TEMPLATES: readonly ((r: Rand) => string)[] = [
  (r) =>
    `${pick(r, COMPANIES)} releases ${pick(r, PRODUCTS)} ${version(r)} with ${pick(r, FEATURES)}`,
  (r) => `${versioned(r)} ${version(r)} arrives with ${pick(r, FEATURES)}`,
  (r) => `${pick(r, COMPANIES)} to acquire ${pick(r, COMPANIES)} in $${int(r, 2, 900)}M deal`,
  (r) =>
    `How ${pick(r, COMPANIES)} cut ${pick(r, METRICS)} by ${int(r, 12, 85)}% after moving to ${
      tech(r)
    }`,
  (r) => `Why ${pick(r, GROUPS)} are betting on ${tech(r)} in ${year(r)}`,
  (r) => `Why ${pick(r, GROUPS)} are quietly abandoning ${tech(r)}`,
  (r) =>
    `${pick(r, COMPANIES)} lays off ${int(r, 20, 1800)} staff from its ${pick(r, COMPONENTS)} team`,
  (r) =>
    `${pick(r, COMPANIES)} raises $${int(r, 3, 250)}M Series ${
      pick(r, ["A", "B", "C", "D"])
    } to build ${pick(r, OBJECTS)}`,
  (r) => `Researchers find ${pick(r, FLAWS)} in ${tech(r)} that ${pick(r, IMPACTS)}`,
  (r) => `Inside ${pick(r, COMPANIES)}'s plan to rebuild ${pick(r, OBJECTS)} on ${tech(r)}`,
  (r) =>
    `${int(r, 3, 12)} lessons from running ${versioned(r)} in production at ${pick(r, COMPANIES)}`,
  (r) => `Is ${tech(r)} still worth learning in ${year(r)}? ${pick(r, GROUPS)} weigh in`,
  (r) => `${pick(r, REGULATORS)} question ${pick(r, COMPANIES)} over ${pick(r, ISSUES)}`,
  (r) =>
    `${pick(r, COMPANIES)} open-sources ${pick(r, OBJECTS)} used by ${int(r, 2, 90)},000 ${
      pick(r, GROUPS)
    }`,
  (r) => {
    const a = versioned(r);
    const b = VERSIONED[
      (VERSIONED.indexOf(a) + 1 + ((r() * (VERSIONED.length - 1)) | 0)) % VERSIONED.length
    ];
    return `Benchmark: ${a} versus ${b} for ${pick(r, WORKLOADS)} workloads`;
  },
  (r) => `${person(r)}, ${pick(r, ROLES)} at ${pick(r, COMPANIES)}, on ${pick(r, PRACTICES)}`,
  (r) =>
    `${pick(r, COMPANIES)} ${pick(r, COMPONENTS)} outage lasts ${int(r, 2, 19)} hours in ${
      pick(r, CITIES)
    }`,
  (r) => `${pick(r, COMPANIES)} ships ${pick(r, PRODUCTS)} ${version(r)} for ${pick(r, PLATFORMS)}`,
  (r) => `The hidden cost of ${pick(r, PRACTICES)} at ${pick(r, GROUPS)}`,
  (r) => `${versioned(r)} ${version(r)} drops support for ${pick(r, LEGACY)}`,
];

/** Sentence templates for article bodies; the pool built from them is shared by all items. */
export const SENTENCE_TEMPLATES: readonly ((r: Rand) => string)[] = [
  (r) =>
    `${pick(r, COMPANIES)} said the change would ${pick(r, EFFECTS)} for most of its ${
      pick(r, GROUPS)
    }.`,
  (r) =>
    `According to ${person(r)}, ${pick(r, ROLES)} at ${pick(r, COMPANIES)}, the team spent ${
      int(r, 2, 30)
    } months on the ${pick(r, COMPONENTS)}.`,
  (r) =>
    `Early benchmarks show ${pick(r, METRICS)} falling by ${int(r, 5, 70)} percent on ${
      pick(r, WORKLOADS)
    } jobs.`,
  (r) =>
    `The ${versioned(r)} project now has ${int(r, 40, 4000)} contributors and ${
      int(r, 2, 95)
    } thousand stars.`,
  (r) => `Critics argue that ${pick(r, PRACTICES)} makes ${pick(r, METRICS)} harder to control.`,
  (r) =>
    `${person(r)} wrote in a blog post that ${tech(r)} is a ${pick(r, ADJECTIVES)} choice for ${
      pick(r, GROUPS)
    }.`,
  (r) => `A spokesperson for ${pick(r, COMPANIES)} declined to comment on ${pick(r, ISSUES)}.`,
  (r) =>
    `The release also fixes ${int(r, 9, 400)} bugs, including ${pick(r, FLAWS)} in the ${
      pick(r, COMPONENTS)
    }.`,
  (r) =>
    `Users on ${pick(r, PLATFORMS)} will get ${pick(r, PRODUCTS)} over the next ${
      int(r, 2, 9)
    } weeks.`,
  (r) =>
    `Analysts expect spending on ${tech(r)} to grow ${int(r, 4, 60)} percent by ${
      year(r)
    }, led by ${pick(r, GROUPS)}.`,
  (r) =>
    `Several ${pick(r, GROUPS)} in ${pick(r, CITIES)} have already moved production traffic to ${
      tech(r)
    }.`,
  (r) =>
    `The ${pick(r, COMPONENTS)} was rewritten in ${pick(r, LANGUAGES)} to reduce ${
      pick(r, METRICS)
    }.`,
  (r) =>
    `Documentation for ${pick(r, FEATURES)} is out, though parts of the ${
      pick(r, COMPONENTS)
    } API stay experimental.`,
  (r) =>
    `${pick(r, COMPANIES)} plans to hire ${int(r, 10, 600)} engineers in ${
      pick(r, CITIES)
    } next year.`,
  (r) =>
    `In internal tests ${pick(r, PRODUCTS)} served ${
      int(r, 12, 980)
    } thousand requests per second on one ${
      pick(r, ["server", "laptop", "rack", "board", "node"])
    }.`,
  (r) => `Maintainers will keep backporting security fixes until ${pick(r, MONTHS)} ${year(r)}.`,
  (r) =>
    `The move follows ${pick(r, EVENTS)} at ${pick(r, COMPANIES)} earlier this ${
      pick(r, ["year", "quarter", "month", "spring", "autumn"])
    }.`,
  (r) =>
    `Some ${pick(r, GROUPS)} reported ${pick(r, PROBLEMS)} after upgrading ${
      versioned(r)
    }, and a patch is due ${pick(r, ["this week", "within days", "next month", "soon"])}.`,
  (r) =>
    `${person(r)} called the decision ${pick(r, ADJECTIVES)} and said ${
      pick(r, COMPANIES)
    } had listened to ${pick(r, GROUPS)}.`,
  (r) =>
    `The round of $${int(r, 4, 300)} million was led by ${pick(r, COMPANIES)} Ventures with ${
      int(r, 2, 9)
    } other backers.`,
  (r) =>
    `Pricing starts at $${int(r, 5, 400)} per month, with discounts for ${pick(r, GROUPS)} and ${
      pick(r, GROUPS)
    }.`,
  (r) =>
    `Independent researchers in ${pick(r, CITIES)} reproduced the results with ${tech(r)} on ${
      pick(r, ["commodity hardware", "a cloud cluster", "a single GPU", "ARM boards"])
    }.`,
  (r) => `The source for ${pick(r, PRODUCTS)} is published under the ${pick(r, LICENCES)} licence.`,
  (r) =>
    `${pick(r, REGULATORS)} asked ${pick(r, COMPANIES)} to explain its approach to ${
      pick(r, ISSUES)
    }.`,
  (r) => `Support for ${pick(r, LEGACY)} ends with ${pick(r, PRODUCTS)} ${version(r)}.`,
  (r) =>
    `${pick(r, COMPANIES)} first showed ${pick(r, OBJECTS)} at a conference in ${
      pick(r, CITIES)
    } in ${pick(r, MONTHS)}.`,
  (r) =>
    `Shares of ${pick(r, COMPANIES)} rose ${int(r, 2, 31)} percent after the ${
      pick(r, ["announcement", "earnings call", "product demo", "filing"])
    }.`,
  (r) =>
    `The outage began at ${int(r, 0, 23)}:${String(int(r, 0, 59)).padStart(2, "0")} UTC and hit ${
      pick(r, GROUPS)
    } in ${pick(r, CITIES)}.`,
  (r) =>
    `It is unclear whether ${pick(r, COMPANIES)} will sell ${pick(r, OBJECTS)} or license it to ${
      pick(r, GROUPS)
    }.`,
  (r) => `One ${pick(r, ROLES)} described the ${versioned(r)} migration as ${pick(r, QUOTES)}.`,
  (r) =>
    `The ${pick(r, GROUPS)} credit ${pick(r, PRACTICES)} for halving their ${pick(r, METRICS)}.`,
  (r) =>
    `${person(r)} plans to demo ${pick(r, FEATURES)} for ${versioned(r)} in ${pick(r, CITIES)} on ${
      pick(r, MONTHS)
    } ${int(r, 1, 28)}.`,
];

/** Titles under five characters, for items meant to fail `title: {min: 5}`. */
export const SHORT_TITLES = ["AI", "Go", "Wow", "Hmm", "Rust", "5G", "WIP", "New", "Oops"] as const;

/** Titles with the spam word the demo flow rejects (and nothing else wrong). */
export const spamTitle = (r: Rand): string =>
  `${pick(r, ["Best", "Top", "Free", "Exclusive", "Trusted"])} online casino ${
    pick(r, ["bonus codes", "jackpots", "free spins", "deals"])
  } for ${pick(r, ["developers", "gamers", "everyone", "you"])}`;

/** Words a near duplicate appends (one or two words). */
// deno-fmt-ignore
export const NEAR_APPENDS = [
  "Updated.", "Developing story.", "More soon.", "Corrected.", "(Updated)",
] as const;

/** Words a near duplicate swaps in for one word of the text. */
// deno-fmt-ignore
export const NEAR_SWAPS = [
  "reportedly", "notably", "recently", "quietly", "largely", "officially",
] as const;
