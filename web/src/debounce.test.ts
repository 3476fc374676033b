import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { leadingTrailing } from './debounce';

describe('leadingTrailing', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('runs a call after a pause at once, and only once', () => {
    const fn = vi.fn();
    const run = leadingTrailing(fn, 50);
    run('a');
    expect(fn.mock.calls).toEqual([['a']]);
    vi.advanceTimersByTime(100);
    expect(fn).toHaveBeenCalledTimes(1);
    run('b');  // after a pause: at once again
    expect(fn.mock.calls).toEqual([['a'], ['b']]);
  });

  it('runs a burst on its first call and then its last, after the pause', () => {
    const fn = vi.fn();
    const run = leadingTrailing(fn, 50);
    run(1);
    for (let i = 2; i <= 5; i++) {
      vi.advanceTimersByTime(30);
      run(i);
    }
    expect(fn.mock.calls).toEqual([[1]]);
    vi.advanceTimersByTime(49);
    expect(fn).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1);
    expect(fn.mock.calls).toEqual([[1], [5]]);
  });

  it('cancel drops the pending call', () => {
    const fn = vi.fn();
    const run = leadingTrailing(fn, 50);
    run(1);
    run(2);
    run.cancel();
    vi.advanceTimersByTime(100);
    expect(fn.mock.calls).toEqual([[1]]);
    run(3);
    expect(fn.mock.calls).toEqual([[1], [3]]);
  });
});
