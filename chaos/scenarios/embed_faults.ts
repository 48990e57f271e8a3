import { apiError, hold, startFakeOpenAI } from "../../tests/adapters/embeddings/_fake_openai.ts";
import { type Scenario, size } from "../_scenario.ts";

/**
 * An OpenAI-compatible embeddings server (local, in this process) that
 * answers some calls with 429 and Retry-After: 1, some with 500, and holds
 * a few past the client's 2 s timeout.
 */
export const embedFaults: Scenario = {
  name: "embed-faults",
  about: "embeddings server answers 429 + Retry-After, 500, and hangs past the 2 s timeout",
  async run(c, mode) {
    const tally = { "429": 0, "500": 0, hang: 0 };
    const hangs = new Set(size(mode, [8, 30], [8, 30, 90, 150, 300]));
    const fake = startFakeOpenAI({
      intercept: async (hit) => {
        if (hit.n <= 2) return undefined;
        if (hangs.has(hit.n)) {
          tally.hang++;
          await hold(2000); // the client gives up here
          c.faultEnded();
          await hold(4000);
          return apiError(500, "held past the client's timeout");
        }
        if (hit.n % 9 === 4) {
          tally["429"]++;
          setTimeout(() => c.faultEnded(), 1000);
          return apiError(429, "Rate limit reached", { "retry-after": "1" });
        }
        if (hit.n % 11 === 6) {
          tally["500"]++;
          c.faultEnded();
          return apiError(500, "The server had an error while processing your request.");
        }
        return undefined;
      },
    });
    c.onClose(() => fake.close());
    await c.start({
      flow: {
        source: { kind: "generator", count: size(mode, 3000, 30_000), seed: 43 },
        openai: { baseUrl: fake.url, timeout: "2s" },
      },
      workers: 2,
    });
    c.notes.push(() => `${tally["429"]}x 429, ${tally["500"]}x 500, ${tally.hang} hangs`);
  },
};
