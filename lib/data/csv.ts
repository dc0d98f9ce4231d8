// Numeric CSV files as a TensorDataset: x float32 [N, features], y the label column.
import * as fs from 'fs';
import { checkOptions, describe, fail } from '../errors';
import { tensor } from '../tensor';
import { TensorDataset } from './dataset';

export interface CsvOptions {
  /** Whether the first row names the columns; default: detected (a non-numeric field in row 1). */
  header?: boolean;
  /** Field separator, one character (default ','). */
  delimiter?: string;
  /** The label column, by name (needs a header) or 0-based index; default the last column; null: no label. */
  label?: string | number | null;
  /** The feature columns (names or indices), in order; default every column except the label. */
  features?: (string | number)[];
  /**
   * The label's dtype: 'int32' (class indices), 'float32' (regression), or 'auto' (default):
   * int32 when every label is an integer, float32 otherwise.
   */
  labelType?: 'int32' | 'float32' | 'auto';
}

const KNOWN = ['header', 'delimiter', 'label', 'features', 'labelType'];

/** Splits CSV text into rows of fields (RFC 4180 quoting, \n or \r\n line ends, blank lines skipped). */
export function splitCsv(text: string, delimiter = ','): { fields: string[]; line: number }[] {
  const rows: { fields: string[]; line: number }[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  let fieldStarted = false;
  const endRow = () => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0].trim() === '' && !fieldStarted)) rows.push({ fields, line: rowLine });
    fields = [];
    field = '';
    fieldStarted = false;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === '\n') line++;
        field += c;
      }
      continue;
    }
    if (c === '"' && field.trim() === '') {
      quoted = true;
      fieldStarted = true;
      field = '';
    } else if (c === delimiter) {
      fields.push(field);
      field = '';
      fieldStarted = true;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRow();
      line++;
      rowLine = line;
    } else {
      field += c;
    }
  }
  if (quoted) fail('INVALID_ARGUMENT', `CSV: a quoted field opened on line ${rowLine} is never closed`);
  if (field !== '' || fields.length > 0) endRow();
  return rows;
}

function parseNumber(s: string): number {
  const t = s.trim();
  if (t === '') return NaN;
  const v = Number(t);
  return v;
}

function isNumeric(s: string): boolean {
  const t = s.trim();
  return t !== '' && (!Number.isNaN(Number(t)) || /^[+-]?(nan|inf(inity)?)$/i.test(t));
}

function toNumber(s: string): number {
  const t = s.trim().toLowerCase();
  if (t === 'nan' || t === '+nan' || t === '-nan') return NaN;
  if (t === 'inf' || t === '+inf' || t === 'infinity' || t === '+infinity') return Infinity;
  if (t === '-inf' || t === '-infinity') return -Infinity;
  return parseNumber(s);
}

/** Parses numeric CSV text into a TensorDataset (x float32 [N, F], y the label column). */
export function parseCsv(text: string, options: CsvOptions = {}): TensorDataset {
  if (typeof text !== 'string') fail('INVALID_ARGUMENT', `parseCsv: expected the CSV text as a string, got ${describe(text)}`);
  const o = checkOptions(options, 'options');
  for (const k of Object.keys(o)) {
    if (!KNOWN.includes(k)) fail('INVALID_ARGUMENT', `CSV: unknown option '${k}' (expected one of ${KNOWN.join(', ')})`);
  }
  const delimiter = o.delimiter ?? ',';
  if (typeof delimiter !== 'string' || delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    fail('INVALID_ARGUMENT', `CSV: expected delimiter to be one character other than a quote or a line end, got ${describe(o.delimiter)}`);
  }
  if (o.header !== undefined && typeof o.header !== 'boolean') fail('INVALID_ARGUMENT', `CSV: expected header to be a boolean, got ${describe(o.header)}`);
  const labelType = o.labelType ?? 'auto';
  if (!['int32', 'float32', 'auto'].includes(labelType as string)) fail('INVALID_ARGUMENT', `CSV: expected labelType 'int32', 'float32' or 'auto', got ${describe(o.labelType)}`);

  const rows = splitCsv(text, delimiter);
  if (rows.length === 0) fail('INVALID_ARGUMENT', 'CSV: no rows');
  const header = o.header ?? rows[0].fields.some((f) => !isNumeric(f));
  const names = header ? rows[0].fields.map((f) => f.trim()) : null;
  const body = header ? rows.slice(1) : rows;
  const width = rows[0].fields.length;
  if (body.length === 0) fail('INVALID_ARGUMENT', 'CSV: no data rows after the header');

  const column = (c: unknown, what: string): number => {
    if (typeof c === 'number') {
      if (!Number.isInteger(c) || c < 0 || c >= width) fail('INVALID_ARGUMENT', `CSV: ${what} column ${c} is out of range (the file has ${width} columns)`);
      return c;
    }
    if (typeof c === 'string') {
      if (!names) fail('INVALID_ARGUMENT', `CSV: ${what} column ${describe(c)} is a name, but the file has no header row (use a 0-based index)`);
      const i = names.indexOf(c);
      if (i < 0) fail('INVALID_ARGUMENT', `CSV: no ${what} column named ${describe(c)} (columns: ${names.join(', ')})`);
      return i;
    }
    return fail('INVALID_ARGUMENT', `CSV: expected the ${what} column as a name or an index, got ${describe(c)}`);
  };
  const labelCol = o.label === null ? -1 : o.label === undefined ? width - 1 : column(o.label, 'label');
  let featureCols: number[];
  if (o.features !== undefined) {
    if (!Array.isArray(o.features) || o.features.length === 0) fail('INVALID_ARGUMENT', `CSV: expected features to be a non-empty array of column names or indices, got ${describe(o.features)}`);
    featureCols = o.features.map((c) => column(c, 'feature'));
  } else {
    featureCols = [];
    for (let c = 0; c < width; c++) if (c !== labelCol) featureCols.push(c);
  }
  if (featureCols.length === 0) fail('INVALID_ARGUMENT', 'CSV: no feature columns left besides the label');

  const n = body.length;
  const f = featureCols.length;
  const x = new Float32Array(n * f);
  const labels = new Float64Array(labelCol >= 0 ? n : 0);
  const colName = (c: number) => (names ? `'${names[c]}'` : `${c}`);
  for (let r = 0; r < n; r++) {
    const { fields, line } = body[r];
    if (fields.length !== width) fail('INVALID_ARGUMENT', `CSV: line ${line} has ${fields.length} fields, expected ${width}`);
    const value = (c: number): number => {
      const s = fields[c];
      if (!isNumeric(s)) fail('INVALID_ARGUMENT', `CSV: line ${line}, column ${colName(c)}: ${describe(s)} is not a number`);
      return toNumber(s);
    };
    for (let k = 0; k < f; k++) x[r * f + k] = value(featureCols[k]);
    if (labelCol >= 0) labels[r] = value(labelCol);
  }
  const xs = tensor(x, { shape: [n, f] });
  if (labelCol < 0) return new TensorDataset(xs);
  const asInt = labelType === 'int32' || (labelType === 'auto' && labels.every((v) => Number.isInteger(v) && Math.abs(v) < 2 ** 31));
  if (asInt) {
    const ints = new Int32Array(n);
    for (let r = 0; r < n; r++) {
      const v = labels[r];
      if (!Number.isInteger(v) || Math.abs(v) >= 2 ** 31) {
        xs.dispose();
        fail('INVALID_ARGUMENT', `CSV: line ${body[r].line}: label ${v} is not an int32 integer (use labelType 'float32')`);
      }
      ints[r] = v;
    }
    return new TensorDataset(xs, tensor(ints, { dtype: 'int32' }));
  }
  return new TensorDataset(xs, tensor(Float32Array.from(labels)));
}

/** Reads a numeric CSV file into a TensorDataset; see parseCsv for the options. */
export function loadCsv(path: string, options: CsvOptions = {}): TensorDataset {
  if (typeof path !== 'string') fail('INVALID_ARGUMENT', `loadCsv: expected a file path, got ${describe(path)}`);
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    return fail('INVALID_ARGUMENT', `loadCsv: cannot read ${path}: ${(e as Error).message}`);
  }
  return parseCsv(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, options);
}
