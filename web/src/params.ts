// The parameters panel is generated from the UDF's Python signature, the way Fused's
// "autodetect UDF parameters based on typing" does: name, annotation and default.

export type ParamType = 'str' | 'int' | 'float' | 'bool' | 'bounds' | 'json' | 'any';

export interface Param {
  name: string;
  type: ParamType;
  /** The default as written in Python (`'a'`, `3`, `None`), or null when there is none. */
  default: string | null;
}

/** Splits `text` at top-level commas (ignoring those inside brackets and strings). */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote = '';
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

function typeOf(annotation: string, defaultValue: string | null): ParamType {
  const a = annotation.replace(/\s/g, '');
  if (/Bounds|Tile|ViewportGDF|TileGDF/.test(a)) return 'bounds';
  if (/^(Optional\[)?(bool)/.test(a)) return 'bool';
  if (/^(Optional\[)?(int)\b/.test(a)) return 'int';
  if (/^(Optional\[)?(float)\b/.test(a)) return 'float';
  if (/^(Optional\[)?(str)\b/.test(a)) return 'str';
  if (/^(Optional\[)?(list|dict|List|Dict|tuple|Sequence)/.test(a)) return 'json';
  if (a) return 'any';
  if (defaultValue === null || defaultValue === 'None') return 'any';
  if (defaultValue === 'True' || defaultValue === 'False') return 'bool';
  if (/^-?\d+$/.test(defaultValue)) return 'int';
  if (/^-?\d*\.\d*([eE]-?\d+)?$/.test(defaultValue)) return 'float';
  if (/^[rbuf]?["']/.test(defaultValue)) return 'str';
  if (/^[[{(]/.test(defaultValue)) return 'json';
  return 'any';
}

/** Returns the signature of `def <entrypoint>(...)`, or [] when it cannot be found. */
export function parseParams(code: string, entrypoint = 'udf'): Param[] {
  const match = new RegExp(`def\\s+${entrypoint}\\s*\\(`).exec(code);
  if (!match) return [];
  let depth = 1;
  let i = match.index + match[0].length;
  const start = i;
  let quote = '';
  for (; i < code.length && depth > 0; i++) {
    const c = code[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
  }
  const inner = code.slice(start, i - 1).replace(/#[^\n]*/g, '');
  const params: Param[] = [];
  for (const part of splitTopLevel(inner)) {
    if (part.startsWith('*') || part === '/') continue;
    const eq = part.search(/=(?!=)/);
    const head = eq >= 0 ? part.slice(0, eq) : part;
    const value = eq >= 0 ? part.slice(eq + 1).trim() : null;
    const colon = head.indexOf(':');
    const name = (colon >= 0 ? head.slice(0, colon) : head).trim();
    const annotation = colon >= 0 ? head.slice(colon + 1).trim() : '';
    if (!/^[A-Za-z_]\w*$/.test(name)) continue;
    params.push({ name, type: name === 'bounds' && !annotation ? 'bounds' : typeOf(annotation, value), default: value });
  }
  return params;
}

/** The text a Python default shows in an input: `'abc'` → `abc`, `None` → ``. */
export function defaultText(param: Param): string {
  const d = param.default;
  if (d === null || d === 'None') return '';
  const str = /^[rbu]?(["'])(.*)\1$/s.exec(d);
  if (str) return str[2];
  return d;
}

/**
 * Turns an input's text into the value posted as the parameter (the server coerces it by
 * the annotation, like `fused.run` does): '' leaves the parameter out so the default applies.
 */
export function paramValue(param: Param, text: string): unknown | undefined {
  if (text === '') return undefined;
  switch (param.type) {
    case 'bool':
      return text === 'true' || text === 'True';
    case 'int':
    case 'float': {
      const n = Number(text);
      return Number.isFinite(n) ? n : text;
    }
    case 'json':
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    default:
      return text;
  }
}

/** Whether a UDF with this signature runs as Tile in "auto" mode (it takes `bounds`). */
export function takesBounds(params: Param[]): boolean {
  return params.some((p) => p.type === 'bounds' || p.name === 'bounds');
}
