// A few DOM helpers: the console builds its views from plain elements.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | boolean | number | EventListener | undefined>;

/** `h('button', { onclick }, 'Close')`. */
export function h<K extends keyof HTMLElementTagNameMap> (tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function append (el: Element, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

let fieldCount = 0;
/** A labelled input: `field('Amount (POD)', h('input'))`. */
export function field (label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  if (!control.id) control.id = `field-${++fieldCount}`;
  const hintEl = hint ? h('small', { id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl);
}

/** A table with a caption; `rows` hold cells. */
export function table (caption: string, headers: string[], rows: Child[][]): HTMLTableElement {
  return h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, ...(rows.length
      ? rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))
      : [h('tr', {}, h('td', { colspan: headers.length }, 'none'))])));
}

/** A status line for errors and results, read out by screen readers. */
export function statusLine (): HTMLElement & { ok(text: string): void; fail(err: unknown): void; clear(): void } {
  const el = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' }) as any;
  el.ok = (text: string) => { el.className = 'status ok'; el.textContent = text; };
  el.fail = (err: unknown) => { el.className = 'status error'; el.textContent = err instanceof Error ? err.message : String(err); };
  el.clear = () => { el.className = 'status'; el.textContent = ''; };
  return el;
}

/** Runs `action` with `button` disabled meanwhile; failures go to `status`. */
export async function busy (button: HTMLButtonElement, status: ReturnType<typeof statusLine>, action: () => Promise<void>): Promise<void> {
  button.disabled = true;
  status.clear();
  try { await action(); } catch (err) { status.fail(err); } finally { button.disabled = false; }
}

/**
 * `render` run one at a time: a call while it runs makes it run once more afterwards (new
 * blocks and history arriving together would otherwise build the same cards twice).
 */
export function serialized (render: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let again = false;
  const run = async (): Promise<void> => {
    if (running) { again = true; return running; }
    running = (async () => {
      try {
        do { again = false; await render(); } while (again);
      } finally { running = undefined; }
    })();
    return running;
  };
  return run;
}
