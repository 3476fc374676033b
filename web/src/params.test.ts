import { describe, expect, it } from 'vitest';
import { defaultText, paramValue, parseParams, takesBounds } from './params';

describe('parseParams', () => {
  it('reads names, annotations and defaults from the signature', () => {
    const code = `@fused.udf\ndef udf(bounds: fused.types.Bounds = None, n: int = 3, scale: float=1.5,\n        name: str = "a,b", flag: bool = False, cols: list = ["x", "y"], other=None, *args, **kw):\n    return n`;
    const params = parseParams(code);
    expect(params.map((p) => [p.name, p.type, p.default])).toEqual([
      ['bounds', 'bounds', 'None'],
      ['n', 'int', '3'],
      ['scale', 'float', '1.5'],
      ['name', 'str', '"a,b"'],
      ['flag', 'bool', 'False'],
      ['cols', 'json', '["x", "y"]'],
      ['other', 'any', 'None'],
    ]);
    expect(takesBounds(params)).toBe(true);
  });

  it('infers types from defaults without annotations and skips comments', () => {
    const params = parseParams('def udf(a=1, b=2.5, c="s", d=True,  # a comment, with a comma\n e=[1]):\n  pass');
    expect(params.map((p) => p.type)).toEqual(['int', 'float', 'str', 'bool', 'json']);
  });

  it('returns nothing without the entrypoint', () => {
    expect(parseParams('def other(x=1): pass')).toEqual([]);
    expect(parseParams('def main(x=1): pass', 'main')).toHaveLength(1);
  });

  it('turns input text into posted values', () => {
    const [n, s, b, j] = parseParams('def udf(n: int = 1, s: str = "hi", b: bool = True, j: dict = None): pass');
    expect(defaultText(s)).toBe('hi');
    expect(defaultText(j)).toBe('');
    expect(paramValue(n, '42')).toBe(42);
    expect(paramValue(n, '')).toBeUndefined();
    expect(paramValue(s, '42')).toBe('42');
    expect(paramValue(b, 'false')).toBe(false);
    expect(paramValue(j, '{"a": 1}')).toEqual({ a: 1 });
  });
});
