import { feedSource } from "./adapters/sources/feed_source.ts";
import { generatorSource } from "./adapters/sources/generator_source.ts";
import { jsonSource } from "./adapters/sources/json_source.ts";
import { htmlSource } from "./adapters/sources/html_source.ts";
import { sitemapSource } from "./adapters/sources/sitemap_source.ts";
import { jsonlSink } from "./adapters/sinks/jsonl_sink.ts";
import { stdoutSink } from "./adapters/sinks/stdout_sink.ts";
import { postgresSink } from "./adapters/sinks/postgres_sink.ts";
import { qdrantSink } from "./adapters/sinks/qdrant_sink.ts";
import { redisStreamSink } from "./adapters/sinks/redis_stream_sink.ts";
import { politeHttp } from "./adapters/http/polite_http.ts";
import { Registry } from "./engine/registry.ts";
import { dedupeStage } from "./actors/deduper.ts";
import { embedStage } from "./actors/embedder.ts";
import { enrichStage } from "./actors/enricher.ts";
import { llmStage } from "./actors/llm.ts";
import { stepStage } from "./actors/step.ts";
import { publishStage } from "./actors/publisher.ts";
import { validateStage } from "./actors/validator.ts";

/**
 * A registry holding every built-in component, and the polite HTTP client
 * (per-host limits, robots.txt) as the factory of each run's client. A fresh one each call, so a
 * program that registers its own stages never changes what another sees.
 *
 * @example
 * ```ts
 * import { builtinRegistry } from "./mod.ts";
 * const registry = builtinRegistry();
 * console.log([...registry.stages.keys()]); // validate, dedupe, enrich, llm, embed, publish, step
 * ```
 */
export function builtinRegistry(): Registry {
  return new Registry()
    .httpClient(politeHttp)
    .source(generatorSource)
    .source(feedSource)
    .source(jsonSource)
    .source(htmlSource)
    .source(sitemapSource)
    .stage(validateStage)
    .stage(dedupeStage)
    .stage(enrichStage)
    .stage(llmStage)
    .stage(embedStage)
    .stage(publishStage)
    .stage(stepStage)
    .sink(jsonlSink)
    .sink(stdoutSink)
    .sink(postgresSink)
    .sink(qdrantSink)
    .sink(redisStreamSink)
    .workerModule(new URL("./stage_worker.ts", import.meta.url));
}
