// Row virtualisation for the dialogue view: only the rows near the list's viewport, and the selected row,
// are in the DOM; the rest are stood in for by spacers of their (measured or estimated) height. A one-hour
// task has ~1,500 turns: building all their rows made the editor slow to open and every edit slow to lay out.
//
// Rows are keyed by their item (a turn object): edits replace turn objects, never mutate them, so a row whose
// turn is unchanged is kept (its text field keeps the focus and the caret), and a changed turn gets a new row.

export class VirtualRows<T extends object> {
  items: T[] = [];
  private live = new Map<T, HTMLElement>();
  private heights = new WeakMap<T, number>();
  private pads: HTMLElement[] = [];
  private estimate: number;
  private queued = false;

  /**
   * `make(i)` builds item i's row, `place(el, i)` tells a kept row its (possibly new) index, `pinned()` is the
   * index that stays rendered wherever the list is scrolled (the selected turn: its field may hold the focus).
   */
  constructor(readonly box: HTMLElement, readonly make: (i: number) => HTMLElement,
              readonly place: (el: HTMLElement, i: number) => void, readonly pinned: () => number,
              readonly overscanPx = 800, estimatePx = 72) {
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
    return (item && this.live.get(item)) || null;
  }

  /** The row showing `from` now shows `to` (the person typed into it: the row already holds the new text). */
  rekey(from: T, to: T): void {
    const row = this.live.get(from);
    if (!row) return;
    this.live.delete(from);
    this.live.set(to, row);
    const h = this.heights.get(from);
    if (h !== undefined) this.heights.set(to, h);
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

  /** Drop every row (the next render builds them again, e.g. when the speaker list changed). */
  reset(): void {
    for (const row of this.live.values()) row.remove();
    this.live.clear();
  }

  /** Which items to render: those within `overscanPx` of the viewport, and the pinned one; plus each item's top. */
  private wanted(): { indices: number[]; tops: number[] } {
    const n = this.items.length;
    const tops = new Array<number>(n + 1);
    tops[0] = 0;
    for (let i = 0; i < n; i++) tops[i + 1] = tops[i] + (this.heights.get(this.items[i]) ?? this.estimate);
    const lo = this.box.scrollTop - this.overscanPx, hi = this.box.scrollTop + this.box.clientHeight + this.overscanPx;
    let first = 0;
    let a = 0, b = n;  // first item whose bottom is below lo
    while (a < b) { const m = (a + b) >> 1; if (tops[m + 1] <= lo) a = m + 1; else b = m; }
    first = a;
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

  /** Bring the DOM in line with the items and the scroll position, touching only rows that changed. */
  render(): void {
    const { indices, tops } = this.wanted();
    const sequence: HTMLElement[] = [];
    const next = new Map<T, HTMLElement>();
    let pads = 0, prev = -1;
    for (const i of indices) {
      if (i > prev + 1) sequence.push(this.pad(pads++, tops[i] - tops[prev + 1]));
      const item = this.items[i];
      let row = this.live.get(item);
      if (row) this.place(row, i);
      else row = this.make(i);
      next.set(item, row);
      sequence.push(row);
      prev = i;
    }
    const n = this.items.length;
    if (prev < n - 1) sequence.push(this.pad(pads++, tops[n] - tops[prev + 1]));
    for (const [item, row] of this.live) if (next.get(item) !== row) row.remove();
    for (let k = pads; k < this.pads.length; k++) this.pads[k].remove();
    this.live = next;
    let cursor = this.box.firstElementChild;
    for (const el of sequence) {
      if (el === cursor) cursor = cursor.nextElementSibling;
      else this.box.insertBefore(el, cursor);
    }
    while (cursor) { const after = cursor.nextElementSibling; cursor.remove(); cursor = after; }
    let total = 0, count = 0;
    for (const [item, row] of this.live) {
      const h = row.offsetHeight;
      if (h > 0) { this.heights.set(item, h); total += h; count++; }
    }
    if (count) this.estimate = total / count;
  }
}
