/**
 * What a flow must deliver, computed from its source definition alone (both
 * sources are deterministic): the items every sink must hold, keyed so that
 * the copies of a deduplicated item count as the item, and the items that
 * must go to dead letters, with the stage that declares them bad.
 */
import { generateItems } from "../adapters/sources/generator_source.ts";
import { itemId } from "../engine/item.ts";
import { numberedItem } from "../tests/engine/redis/_worker.ts";
import type { SourceSpec } from "./_flow.ts";

export interface Expected {
  /** Item id -> the key it counts as (a copy counts as the unique item it copies). */
  keyOf: Map<string, string>;
  /** Keys that must be published. */
  published: Set<string>;
  /** `stage/id` -> how many dead letters of that item the stage must write. */
  deadLetters: Map<string, number>;
  /** Items the source emits. */
  emitted: number;
}

/** `poisonStage`: the stage a poison item's dead letter names (see Cluster.start). */
export function expectedOf(source: SourceSpec, poisonStage = "poison"): Expected {
  const keyOf = new Map<string, string>();
  const published = new Set<string>();
  const deadLetters = new Map<string, number>();
  const letter = (stage: string, id: string) => {
    const k = `${stage}/${id}`;
    deadLetters.set(k, (deadLetters.get(k) ?? 0) + 1);
  };
  if (source.kind === "generator") {
    const { items, labels, origin } = generateItems({
      count: source.count,
      seed: source.seed,
    });
    const ids = items.map(itemId);
    ids.forEach((id, i) => {
      if (labels[i] === "invalid") return letter("validate", id);
      const key = origin[i] >= 0 ? ids[origin[i]] : id;
      keyOf.set(id, key);
      if (labels[i] === "unique") published.add(id);
    });
  } else {
    const poison = new Set(source.poison ?? []);
    for (let i = 0; i < source.count; i++) {
      const id = itemId(numberedItem(i, poison.has(i)));
      if (poison.has(i)) letter(poisonStage, id);
      else {
        keyOf.set(id, id);
        published.add(id);
      }
    }
  }
  return { keyOf, published, deadLetters, emitted: source.count };
}
