/**
 * A keyed tally whose size is bounded, so that an aggregate stays small enough for one
 * DynamoDB item however varied the history is (step ids, paths, prompt words).
 *
 * Up to `cap` keys everything is exact and merging is order-independent. Beyond it the
 * smallest entries (by weight, ties by key) fold into `other`, so totals are kept. The
 * approximation that follows: a kept key's figures are a lower bound of its true figures,
 * short by at most what `other` holds (a key folded in one batch and seen again in the next
 * restarts from the later batch). In memory a map may grow to 2 × cap before it is pruned
 * back, which keeps pruning amortised; the stored form always holds at most `cap` keys.
 */
export interface BoundedMapSpec<V> {
  cap: number;
  create(): V;
  /** What "smallest" means when pruning (a count). */
  weight(value: V): number;
  /** Adds `source` into `target`, copying, never sharing. */
  mergeInto(target: V, source: V): void;
}

export interface BoundedMapJson<J> {
  /** Entries by key, keys sorted. */
  e: Record<string, J>;
  /** What was folded away, if anything. */
  o?: J;
}

export interface BoundedView<V> {
  /** At most `cap` entries, heaviest first, ties by key. */
  entries: Array<[string, V]>;
  other: V | undefined;
}

export class BoundedMap<V> {
  readonly spec: BoundedMapSpec<V>;
  private readonly map = new Map<string, V>();
  private folded: V | undefined;

  constructor(spec: BoundedMapSpec<V>) {
    this.spec = spec;
  }

  get size(): number {
    return this.map.size;
  }

  /** The entry for `key`, created empty when missing. */
  get(key: string): V {
    let value = this.map.get(key);
    if (value === undefined) {
      if (this.map.size >= this.spec.cap * 2) this.prune(this.spec.cap);
      value = this.spec.create();
      this.map.set(key, value);
    }
    return value;
  }

  peek(key: string): V | undefined {
    return this.map.get(key);
  }

  keys(): IterableIterator<string> {
    return this.map.keys();
  }

  mergeFrom(source: BoundedMap<V>): void {
    for (const [key, value] of source.map) this.spec.mergeInto(this.get(key), value);
    if (source.folded !== undefined) {
      if (this.folded === undefined) this.folded = this.spec.create();
      this.spec.mergeInto(this.folded, source.folded);
    }
  }

  /** A bounded view, without changing the map: the form the reports and the stored JSON use. */
  view(cap: number = this.spec.cap): BoundedView<V> {
    const sorted = this.sortedEntries();
    if (sorted.length <= cap) return { entries: sorted, other: this.folded };
    const other = this.spec.create();
    if (this.folded !== undefined) this.spec.mergeInto(other, this.folded);
    for (const [, value] of sorted.slice(cap)) this.spec.mergeInto(other, value);
    return { entries: sorted.slice(0, cap), other };
  }

  toJSON<J>(encode: (value: V) => J): BoundedMapJson<J> {
    // Within the cap the view holds every entry: only the order by key matters here.
    const { entries, other } =
      this.map.size <= this.spec.cap ? { entries: [...this.map], other: this.folded } : this.view();
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const e: Record<string, J> = {};
    for (const [key, value] of entries) e[key] = encode(value);
    return other === undefined ? { e } : { e, o: encode(other) };
  }

  /** Reads the stored form into `into` (a new map by default; it must be empty). */
  static fromJSON<V, J, M extends BoundedMap<V> = BoundedMap<V>>(
    spec: BoundedMapSpec<V>,
    json: BoundedMapJson<J>,
    decode: (json: J) => V,
    into?: M,
  ): M {
    const map = into ?? (new BoundedMap(spec) as M);
    for (const [key, value] of Object.entries(json.e)) map.map.set(key, decode(value));
    if (json.o !== undefined) map.folded = decode(json.o);
    return map;
  }

  private sortedEntries(): Array<[string, V]> {
    const weight = this.spec.weight;
    return [...this.map].sort(
      ([keyA, a], [keyB, b]) => weight(b) - weight(a) || (keyA < keyB ? -1 : keyA > keyB ? 1 : 0),
    );
  }

  private prune(cap: number): void {
    const { entries, other } = this.view(cap);
    this.map.clear();
    for (const [key, value] of entries) this.map.set(key, value);
    this.folded = other;
  }
}
