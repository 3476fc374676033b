import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readZip } from './zip';

/** A minimal zip writer (stored or deflated entries, CRCs left 0: the reader ignores them). */
function makeZip(entries: { name: string; text: string; deflate?: boolean }[]): ArrayBuffer {
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = enc.encode(e.name);
    const raw = enc.encode(e.text);
    const data = e.deflate ? new Uint8Array(deflateRawSync(raw)) : raw;
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(8, e.deflate ? 8 : 0, true);
    local.setUint32(18, data.length, true);
    local.setUint32(22, raw.length, true);
    local.setUint16(26, name.length, true);
    const dir = new DataView(new ArrayBuffer(46));
    dir.setUint32(0, 0x02014b50, true);
    dir.setUint16(10, e.deflate ? 8 : 0, true);
    dir.setUint32(20, data.length, true);
    dir.setUint32(24, raw.length, true);
    dir.setUint16(28, name.length, true);
    dir.setUint32(42, offset, true);
    chunks.push(new Uint8Array(local.buffer), name, data);
    central.push(new Uint8Array(dir.buffer), name);
    offset += 30 + name.length + data.length;
  }
  const dirSize = central.reduce((a, c) => a + c.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, dirSize, true);
  end.setUint32(16, offset, true);
  const all = [...chunks, ...central, new Uint8Array(end.buffer)];
  const out = new Uint8Array(all.reduce((a, c) => a + c.length, 0));
  let at = 0;
  for (const c of all) {
    out.set(c, at);
    at += c.length;
  }
  return out.buffer;
}

describe('readZip', () => {
  it('reads stored and deflated entries of a UDF folder', async () => {
    const code = '@fused.udf\ndef udf():\n    return 1\n'.repeat(20);
    const files = await readZip(
      makeZip([
        { name: 'My_UDF/', text: '' },
        { name: 'My_UDF/meta.json', text: '{"name": "My_UDF"}' },
        { name: 'My_UDF/My_UDF.py', text: code, deflate: true },
      ]),
    );
    expect([...files.keys()]).toEqual(['My_UDF/meta.json', 'My_UDF/My_UDF.py']);
    expect(new TextDecoder().decode(files.get('My_UDF/My_UDF.py'))).toBe(code);
  });

  it('names what is wrong with a file that is not a zip', async () => {
    await expect(readZip(new TextEncoder().encode('hello, this is not a zip file at all').buffer)).rejects.toThrow(
      'Not a zip file: no end of central directory',
    );
  });
});
