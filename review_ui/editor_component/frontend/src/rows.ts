// Row virtualisation for the dialogue view: only the rows near the list's viewport, and the selected row,
// are in the DOM; the rest are stood in for by spacers of their (measured or estimated) height. A one-hour
// task has ~1,500 turns: building all their rows made the editor slow to open and every edit slow to lay out.
//
// Rows are keyed by their item's stable key (a turn's id): an edit replaces a turn object but keeps its id, so
// its row is patched in place (`patch`), never rebuilt: its text field keeps the focus and the caret, and an
// edit costs the layout of the fields that changed, not of a new row (rebuilding the focused row and focusing
// its replacement was most of a nudge's or a merge's time).

export class VirtualRows<T extends object> {
  items: T[] = [];
  private live = new Map<string, { item: T; row: HTMLElement }>();
  private heights = new Map<string, number>();
  private pads: HTMLElement[] = [];
  private estimate: number;
  private queued = false;

  /**
   * `make(i)` builds item i's row, `patch(el, i, changed)` tells a kept row its (possibly new) index and, when
   * `changed`, brings its content in line with item i; `pinned()` is the index that stays rendered wherever the
   * list is scrolled (the selected turn: its field may hold the focus); `keyOf` names an item across edits.
   */
  constructor(readonly box: HTMLElement, readonly make: (i: number) => HTMLElement,
              readonly patch: (el: HTMLElement, i: number, changed: boolean) => void, readonly pinned: () => number,
              readonly keyOf: (item: T) => string, readonly overscanPx = 800, estimatePx = 72) {
    this.estimate = estimatePx;
    box.addEventListener("scroll", () => {
      if (this.queued) return;
      this.queued = true;
      window.requestAnimationFrame(() => { this.queued = false; this.render(); });
    }, { passive: true });
  }

  /** The row of item i when it is rendered. */
  rowOf(i: number): HTMLElement | null {
    const item = this.items[i];
    return (item && this.live.get(this.keyOf(item))?.row) || null;
  }

  /** Scroll the list (only the list, never the page around it) so item i's row is in view. */
  reveal(i: number): void {
    const row = this.rowOf(i);
    if (!row) return;
    const box = this.box, top = row.offsetTop, bottom = top + row.offsetHeight;
    let to = box.scrollTop;
    if (top < to) to = top;
    else if (bottom > to + box.clientHeight) to = Math.min(top, bottom - box.clientHeight);
    if (to !== box.scrollTop) {
      box.scrollTop = to;
      this.render();
    }
  }

  /** The row of `from` shows `to` from the next render on (patched, as after an edit), and `to`'s own row goes: a
   * merge keeps the earlier turn, and the later turn's row, which holds the focus, becomes its row, so the focus
   * does not move (focusing a text field costs 5-15 ms: most of a merge). */
  adopt(from: string, to: string): void {
    const kept = this.live.get(from);
    if (!kept || from === to) return;
    this.live.get(to)?.row.remove();
    this.live.delete(from);
    this.live.set(to, kept);
  }

  /** Drop every row (the next render builds them again, e.g. when the speaker list changed). */
  reset(): void {
    for (const { row } of this.live.values()) row.remove();
    this.live.clear();
  }

  /** Which items to render: those within `overscanPx` of the viewport, and the pinned one; plus each item's top. */
  private wanted(): { indices: number[]; tops: number[] } {
    const n = this.items.length;
    const tops = new Array<number>(n + 1);
    tops[0] = 0;
    for (let i = 0; i < n; i++) tops[i + 1] = tops[i] + (this.heights.get(this.keyOf(this.items[i])) ?? this.estimate);
    const lo = this.box.scrollTop - this.overscanPx, hi = this.box.scrollTop + this.box.clientHeight + this.overscanPx;
    let a = 0, b = n;  // first item whose bottom is below lo
    while (a < b) { const m = (a + b) >> 1; if (tops[m + 1] <= lo) a = m + 1; else b = m; }
    const first = a;
    let last = first;
    while (last < n - 1 && tops[last + 1] < hi) last++;
    const indices: number[] = [];
    for (let i = first; i <= last && i < n; i++) indices.push(i);
    const keep = this.pinned();
    if (keep >= 0 && keep < n && (keep < first || keep > last)) {
      indices.push(keep);
      indices.sort((x, y) => x - y);
    }
    return { indices, tops };
  }

  private pad(k: number, height: number): HTMLElement {
    if (!this.pads[k]) {
      this.pads[k] = document.createElement("div");
      this.pads[k].className = "pad";
      this.pads[k].setAttribute("aria-hidden", "true");
    }
    const px = `${height}px`;
    if (this.pads[k].style.height !== px) this.pads[k].style.height = px;
    return this.pads[k];
  }

  /** Bring the DOM in line with the items and the scroll position, touching only rows that changed; rows built or
   * patched are measured afterwards, all at once (one layout, not one per row). */
  render(): void {
    const { indices, tops } = this.wanted();
    const sequence: HTMLElement[] = [];
    const next = new Map<string, { item: T; row: HTMLElement }>();
    const measure: [string, HTMLElement][] = [];
    let pads = 0, prev = -1;
    for (const i of indices) {
      if (i > prev + 1) sequence.push(this.pad(pads++, tops[i] - tops[prev + 1]));
      const item = this.items[i], key = this.keyOf(item);
      const had = this.live.get(key);
      let row: HTMLElement;
      if (had && !next.has(key)) {
        row = had.row;
        this.patch(row, i, had.item !== item);
        if (had.item !== item) measure.push([key, row]);
      } else {
        row = this.make(i);
        measure.push([key, row]);
      }
      next.set(key, { item, row });
      sequence.push(row);
      prev = i;
    }
    const n = this.items.length;
    if (prev < n - 1) sequence.push(this.pad(pads++, tops[n] - tops[prev + 1]));
    for (const [key, { row }] of this.live) if (next.get(key)?.row !== row) row.remove();
    for (let k = pads; k < this.pads.length; k++) this.pads[k].remove();
    this.live = next;
    let cursor = this.box.firstElementChild;
    for (const el of sequence) {
      if (el === cursor) cursor = cursor.nextElementSibling;
      else this.box.insertBefore(el, cursor);
    }
    while (cursor) { const after = cursor.nextElementSibling; cursor.remove(); cursor = after; }
    // only heights that are new or changed move the estimate: a patched row of the same height re-measured on every
    // edit drifted the estimate, so every edit resized the spacers (and the browser re-anchored the scrolled list)
    let total = 0, count = 0;
    for (const [key, row] of measure) {
      const h = row.offsetHeight;
      if (h > 0 && this.heights.get(key) !== h) { this.heights.set(key, h); total += h; count++; }
    }
    if (count) this.estimate = (this.estimate * 3 + total / count) / 4;
  }
}
