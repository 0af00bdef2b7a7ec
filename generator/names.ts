import { randomBytes } from 'node:crypto';

// Object keys for generated files. `simple` keys are plain ASCII; `realistic`
// keys look like what an accounting office's staff would name things, with the
// characters that S3 event notifications form-URL-encode (space → `+`, `+` →
// `%2B`, accents → %XX, `#` → `%23`), so the counting side's key decoding is
// exercised by ordinary runs.

export const NameStyle = { simple: 'simple', realistic: 'realistic' } as const;
export type NameStyle = (typeof NameStyle)[keyof typeof NameStyle];

export interface Client {
  code: string;
  name: string;
}

export interface DocumentKind {
  slug: string;
  title: string;
  extension: 'csv' | 'txt';
}

export const documentKinds: readonly DocumentKind[] = [
  { slug: 'extrato', title: 'extrato-bancário', extension: 'csv' },
  { slug: 'notas', title: 'notas fiscais de saída', extension: 'csv' },
  { slug: 'folha', title: 'folha de pagamento', extension: 'csv' },
  { slug: 'balancete', title: 'balancete', extension: 'csv' },
  { slug: 'razao', title: 'razão contábil', extension: 'txt' },
  { slug: 'caixa', title: 'livro-caixa', extension: 'csv' },
  { slug: 'conciliacao', title: 'conciliação cartões + PIX', extension: 'csv' },
  { slug: 'pagar', title: 'contas a pagar', extension: 'csv' },
  { slug: 'receber', title: 'contas a receber', extension: 'csv' },
  { slug: 'icms', title: 'apuração ICMS', extension: 'txt' },
];

const businesses = [
  'Padaria',
  'Mercearia',
  'Farmácia',
  'Oficina Mecânica',
  'Clínica Odontológica',
  'Açougue',
  'Confeitaria',
  'Restaurante',
  'Papelaria',
  'Auto Peças',
  'Construtora',
  'Distribuidora',
  'Transportes',
  'Café',
  'Ótica',
  'Pet Shop',
  'Salão de Beleza',
  'Escola Infantil',
] as const;

const places = [
  'São João',
  'Bom Jesus',
  'Nossa Senhora Aparecida',
  'Irmãos Araújo',
  'Conceição',
  'Estrela do Sul',
  'Três Corações',
  'União',
  'Paraíso',
  'Ipê Amarelo',
  'Jardim Botânico',
  'Boa Vista',
  'Santa Luzia',
  'Vila Esperança',
] as const;

const suffixes = ['', ' Ltda', ' ME', ' & Cia', ' + Filhos', ' EIRELI', ''] as const;

export const clientCount = 250;

// A client code always maps to the same company name, as in a real office.
export function describeClient(number: number): Client {
  const business = businesses[number % businesses.length];
  const place = places[Math.floor(number / businesses.length) % places.length];
  const suffix = suffixes[number % suffixes.length];
  return { code: `CLI-${String(number).padStart(4, '0')}`, name: `${business} ${place}${suffix}` };
}

// Keys must be unique within a run (the file number) and across runs (the run
// id): a repeated key would overwrite an earlier object and make its manifest
// line wrong. Time first keeps run ids roughly sortable; the random tail keeps
// two runs started in the same millisecond apart.
export function createRunId(now: number = Date.now()): string {
  return `${now.toString(36)}${randomBytes(3).toString('hex')}`;
}

interface KeyParts {
  prefix: string;
  style: NameStyle;
  runId: string;
  // 1-based position of the file in its run
  number: number;
  // how many files the run has, to pad the number
  count: number;
  // YYYY-MM-DD
  date: string;
  client: Client;
  document: DocumentKind;
}

export function buildKey(parts: KeyParts): string {
  const { prefix, runId, number, date, client, document } = parts;
  if (parts.style === NameStyle.simple) {
    const padded = String(number).padStart(Math.max(6, String(parts.count).length), '0');
    return `${prefix}${date}/${client.code.toLowerCase()}-${document.slug}-${runId}-${padded}.txt`;
  }
  const [year, month] = date.split('-');
  // NFC: the same visible name must always be the same bytes, or S3 would hold
  // two keys that look identical (macOS file names arrive decomposed, NFD).
  // The prefix is the caller's and is kept byte for byte, since notification
  // filters match it exactly.
  const name = `${year}/${month}/${client.code} ${client.name}/${document.title} ${date} lote ${runId} #${number}.${document.extension}`;
  return `${prefix}${name.normalize('NFC')}`;
}
