import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FilePlan } from './plan.ts';
import { createRandom, type Random } from './random.ts';

// File contents: semicolon-separated rows as Brazilian accounting exports
// write them (the comma is the decimal separator), a header line first, rows
// with dates, client codes, document numbers, accented descriptions and
// amounts. Produced as a stream so a file of any size needs only one chunk of
// memory at a time.

// No generated line is longer than this many bytes (terminator included);
// the uploader sizes multipart parts from it (S3 allows at most 10,000 parts).
export const maxLineBytes = 256;

const headers: Record<string, string> = {
  extrato: 'data;cliente;documento;histórico;valor;d/c',
  notas: 'emissão;cliente;nota fiscal;descrição;valor total;situação',
  folha: 'competência;cliente;matrícula;evento;valor;tipo',
  balancete: 'data;cliente;conta;descrição da conta;saldo;natureza',
  razao: 'data;cliente;lançamento;histórico;valor;d/c',
  caixa: 'data;cliente;recibo;histórico;valor;entrada/saída',
  conciliacao: 'data;cliente;autorização;operadora / histórico;valor;status',
  pagar: 'vencimento;cliente;título;fornecedor / histórico;valor;situação',
  receber: 'vencimento;cliente;título;sacado / histórico;valor;situação',
  icms: 'período;cliente;cfop;descrição;base de cálculo;alíquota',
};

const actions = [
  'Pagamento fornecedor',
  'Recebimento de cliente',
  'Tarifa bancária',
  'Transferência PIX',
  'Depósito em conta',
  'Pró-labore',
  'Aluguel do imóvel',
  'Energia elétrica',
  'Água e esgoto',
  'Serviços de manutenção',
  'Compra de mercadorias',
  'ISS retido',
  'Contribuição INSS',
  'Depósito FGTS',
  'Devolução de vendas',
  'Juros e multa por atraso',
  'Antecipação de recebíveis',
  'Seguro empresarial',
  'Honorários contábeis',
  'Combustível e pedágio',
] as const;

const counterparts = [
  'Açougue Boi Gordo',
  'João Gonçalves',
  'Maria da Conceição',
  'Ótica Visão Clara',
  'Pão de Açúcar',
  'Lojas Irmãos Araújo',
  'Cia. Energética São Luís',
  'Sabesp',
  'Posto Ipiranga Três Rios',
  'Gráfica Ação & Cia',
  'Distribuidora Ribeirão',
  'Cartório do 2º Ofício',
  'Prefeitura de Niterói',
  'Receita Federal',
  'Cooperativa Agrícola Paraná',
  'Conceição + Filhos Ltda',
] as const;

const statuses = ['D', 'C', 'pago', 'em aberto', 'conciliado', 'estornado'] as const;

// Brazilian format: 1.234.567,89 (dot for thousands, comma for decimals)
export function formatAmount(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const absolute = Math.abs(cents);
  let whole = String(Math.floor(absolute / 100));
  let grouped = '';
  while (whole.length > 3) {
    grouped = `.${whole.slice(-3)}${grouped}`;
    whole = whole.slice(0, -3);
  }
  const fraction = absolute % 100;
  return `${sign}${whole}${grouped},${fraction < 10 ? '0' : ''}${fraction}`;
}

// rows are dated within the 30 days up to the statement date
function listRowDates(date: string): string[] {
  const end = Date.parse(`${date}T00:00:00Z`);
  return Array.from({ length: 31 }, (_, days) =>
    new Date(end - days * 86_400_000).toISOString().slice(0, 10),
  );
}

const referenceKinds = ['NF', 'DOC', 'TED', 'BOL', 'REC'] as const;

function renderRow(random: Random, plan: FilePlan, dates: readonly string[], row: number): string {
  // a rare blank line, as exports often carry; never the last line, where it
  // would change the count of a file without a final newline
  if (row < plan.lines - 1 && random.chance(0.002)) return '';
  const date = random.pick(dates);
  const reference = `${random.pick(referenceKinds)} ${String(random.int(1, 999_999)).padStart(6, '0')}`;
  let description = `${random.pick(actions)} - ${random.pick(counterparts)}`;
  // some descriptions hold the separator, so they are quoted as CSV does it
  if (random.chance(0.05)) description = `"${description}; parcela ${random.int(1, 12)}/12"`;
  const magnitude = random.chance(0.1) ? random.int(100_000, 99_999_999) : random.int(1, 500_000);
  const cents = random.chance(0.3) ? -magnitude : magnitude;
  return `${date};${plan.client.code};${reference};${description};${formatAmount(cents)};${random.pick(statuses)}`;
}

// The lines of a file, without terminators: the header, then data rows.
export function* generateLines(plan: FilePlan): Generator<string> {
  const random = createRandom(plan.seed);
  const dates = listRowDates(plan.date);
  for (let line = 0; line < plan.lines; line++) {
    yield line === 0
      ? (headers[plan.document.slug] ?? 'data;cliente;histórico;valor')
      : renderRow(random, plan, dates, line);
  }
}

interface StreamStats {
  bytes: number;
  lines: number;
  sha256: string;
}

const defaultChunkBytes = 64 * 1024;

// A Readable that renders the planned lines on demand: each _read call builds
// one chunk, so memory stays at one chunk however large the file, and the byte
// count and SHA-256 are computed over exactly the bytes handed downstream.
export class GeneratedFileStream extends Readable {
  readonly plan: FilePlan;
  bytes = 0;
  lines = 0;
  private readonly source: Generator<string>;
  private readonly hash: Hash = createHash('sha256');
  private readonly chunkBytes: number;
  private readonly onChunk: ((bytes: number) => void) | undefined;
  private digest?: string;

  constructor(plan: FilePlan, options: { chunkBytes?: number; onChunk?: (bytes: number) => void } = {}) {
    super();
    this.plan = plan;
    this.source = generateLines(plan);
    this.chunkBytes = options.chunkBytes ?? defaultChunkBytes;
    this.onChunk = options.onChunk;
  }

  override _read(): void {
    const parts: string[] = [];
    let length = 0;
    while (length < this.chunkBytes) {
      const next = this.source.next();
      if (next.done) break;
      this.lines++;
      const last = this.lines === this.plan.lines;
      const line = last && !this.plan.finalNewline ? next.value : next.value + this.plan.eol;
      parts.push(line);
      // characters, not bytes: accents make chunks a little larger, which is fine
      length += line.length;
    }
    if (parts.length > 0) {
      const chunk = Buffer.from(parts.join(''), 'utf8');
      this.bytes += chunk.byteLength;
      this.hash.update(chunk);
      this.onChunk?.(chunk.byteLength);
      this.push(chunk);
    }
    if (this.lines === this.plan.lines) {
      this.digest = this.hash.digest('hex');
      this.push(null);
    }
  }

  // valid once the stream has ended
  stats(): StreamStats {
    if (this.digest === undefined) throw new Error(`the stream for ${this.plan.key} has not ended yet`);
    return { bytes: this.bytes, lines: this.lines, sha256: this.digest };
  }
}
