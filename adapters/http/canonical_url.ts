/** Kept for importers of the old path: canonical URLs live in the engine, which derives ids from them. */
export { canonicalUrl, urlKey } from "../../engine/canonical_url.ts";
