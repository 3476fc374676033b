// Runs on both edges of a debounce: a call after a pause runs at once (no wait between a
// keystroke and its request); calls that follow within `ms` wait until they pause, then
// the last one runs once.
export interface Debounced<A extends unknown[]> {
  (...args: A): void;
  /** Drops a pending trailing call. */
  cancel(): void;
}

export function leadingTrailing<A extends unknown[]>(fn: (...args: A) => void, ms: number): Debounced<A> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let pending: A | undefined;
  const call = (...args: A) => {
    if (timer === undefined) fn(...args);
    else pending = args;
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      const last = pending;
      pending = undefined;
      if (last) fn(...last);
    }, ms);
  };
  call.cancel = () => {
    clearTimeout(timer);
    timer = undefined;
    pending = undefined;
  };
  return call;
}
