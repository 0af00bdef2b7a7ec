import { createServer, type Server, type Socket } from 'node:net';

// An in-process Redis for the demo on a machine without redis-server: the
// RESP2 protocol over TCP and exactly the commands the buffer is allowed to
// use (docs: interfaces.md), with Redis's replies and error messages. No
// maintained npm package embeds a Redis server with streams and consumer
// groups, so this is written here. It is not a general-purpose Redis: no
// persistence, no Lua, no blocking reads, no cluster; anything outside the
// list answers "ERR unknown command" (so ioredis's HELLO falls back to RESP2,
// as with a Redis before 6).

export interface RedisEmulator {
  url: string;
  port: number;
  stop(): Promise<void>;
}

type Reply =
  | { simple: string }
  | { error: string }
  | { nullArray: true }
  | number
  | string
  | Buffer
  | null
  | Reply[];

const OK: Reply = { simple: 'OK' };
const QUEUED: Reply = { simple: 'QUEUED' };

class CommandError extends Error {}

function error(message: string): CommandError {
  return new CommandError(message);
}

const wrongType = 'WRONGTYPE Operation against a key holding the wrong kind of value';
const syntaxError = 'ERR syntax error';
const notInteger = 'ERR value is not an integer or out of range';

interface StreamId {
  ms: number;
  seq: number;
}

interface StreamEntry {
  id: StreamId;
  fields: Buffer[];
}

interface PendingEntry {
  consumer: string;
  deliveredAt: number;
  deliveries: number;
}

interface ConsumerGroup {
  lastDelivered: StreamId;
  // insertion order is not id order after claims: sort when listing
  pending: Map<string, PendingEntry>;
  consumers: Set<string>;
}

interface StreamValue {
  entries: StreamEntry[];
  last: StreamId;
  groups: Map<string, ConsumerGroup>;
}

type Value = { type: 'string'; data: Buffer } | { type: 'stream'; stream: StreamValue };

interface Entry {
  value: Value;
  expiresAt?: number | undefined;
}

function formatId(id: StreamId): string {
  return `${id.ms}-${id.seq}`;
}

function compareIds(a: StreamId, b: StreamId): number {
  return a.ms !== b.ms ? a.ms - b.ms : a.seq - b.seq;
}

const minId: StreamId = { ms: 0, seq: 0 };
const maxId: StreamId = { ms: Number.MAX_SAFE_INTEGER, seq: Number.MAX_SAFE_INTEGER };

function parseId(text: string, missingSeq: number): StreamId {
  const match = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (match === null) throw error('ERR Invalid stream ID specified as stream command argument');
  return { ms: Number(match[1]), seq: match[2] === undefined ? missingSeq : Number(match[2]) };
}

// XRANGE bounds: - and +, inclusive ids, or exclusive ones written (id
function parseBound(text: string, isStart: boolean): { id: StreamId; exclusive: boolean } {
  if (text === '-') return { id: minId, exclusive: false };
  if (text === '+') return { id: maxId, exclusive: false };
  const exclusive = text.startsWith('(');
  const id = parseId(exclusive ? text.slice(1) : text, isStart ? 0 : Number.MAX_SAFE_INTEGER);
  return { id, exclusive };
}

function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') source += '.*';
    else if (c === '?') source += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end === -1) source += '\\[';
      else {
        const body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
        source += `[${body.startsWith('^') ? `^${body.slice(1)}` : body}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < pattern.length) {
      i += 1;
      source += (pattern[i] as string).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else source += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}

function integer(text: string | undefined): number {
  if (text === undefined || !/^-?\d+$/.test(text)) throw error(notInteger);
  return Number(text);
}

class Keyspace {
  private readonly entries = new Map<string, Entry>();
  // bumped on every write and kept after deletion, so WATCH notices both
  private readonly versions = new Map<string, number>();
  private clock = 0;

  version(key: string): number {
    this.expire(key);
    return this.versions.get(key) ?? 0;
  }

  touch(key: string): void {
    this.clock += 1;
    this.versions.set(key, this.clock);
  }

  private expire(key: string): void {
    const entry = this.entries.get(key);
    if (entry?.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      this.touch(key);
    }
  }

  get(key: string): Entry | undefined {
    this.expire(key);
    return this.entries.get(key);
  }

  set(key: string, entry: Entry): void {
    this.entries.set(key, entry);
    this.touch(key);
  }

  delete(key: string): boolean {
    const existed = this.get(key) !== undefined;
    if (existed) {
      this.entries.delete(key);
      this.touch(key);
    }
    return existed;
  }

  keys(): string[] {
    return [...this.entries.keys()].filter((key) => this.get(key) !== undefined).sort();
  }
}

interface Connection {
  db: number;
  name?: string;
  multi?: { queued: string[][]; failed: boolean };
  watched: Map<string, { db: number; version: number }>;
}

class RedisState {
  private readonly databases = new Map<number, Keyspace>();

  keyspace(db: number): Keyspace {
    let keyspace = this.databases.get(db);
    if (keyspace === undefined) {
      keyspace = new Keyspace();
      this.databases.set(db, keyspace);
    }
    return keyspace;
  }
}

// Commands allowed inside MULTI (queued) — everything but the transaction
// commands themselves.
const transactionCommands = new Set(['MULTI', 'EXEC', 'DISCARD', 'WATCH', 'UNWATCH']);

function executeCommand(state: RedisState, connection: Connection, args: string[], raw: Buffer[]): Reply {
  const name = (args[0] ?? '').toUpperCase();
  if (connection.multi !== undefined && !transactionCommands.has(name) && name !== 'QUIT') {
    if (!(name in handlers)) {
      connection.multi.failed = true;
      return { error: unknownCommand(args) };
    }
    connection.multi.queued.push(args);
    queuedRaw.set(args, raw);
    return QUEUED;
  }
  switch (name) {
    case 'MULTI':
      if (connection.multi !== undefined) return { error: 'ERR MULTI calls can not be nested' };
      connection.multi = { queued: [], failed: false };
      return OK;
    case 'DISCARD':
      if (connection.multi === undefined) return { error: 'ERR DISCARD without MULTI' };
      connection.multi = undefined;
      connection.watched.clear();
      return OK;
    case 'WATCH': {
      if (connection.multi !== undefined) return { error: 'ERR WATCH inside MULTI is not allowed' };
      if (args.length < 2) return { error: arity(name) };
      const keyspace = state.keyspace(connection.db);
      for (const key of args.slice(1)) {
        if (!connection.watched.has(key)) {
          connection.watched.set(key, { db: connection.db, version: keyspace.version(key) });
        }
      }
      return OK;
    }
    case 'UNWATCH':
      connection.watched.clear();
      return OK;
    case 'EXEC': {
      const multi = connection.multi;
      if (multi === undefined) return { error: 'ERR EXEC without MULTI' };
      connection.multi = undefined;
      const watched = [...connection.watched.entries()];
      connection.watched.clear();
      if (multi.failed) return { error: 'EXECABORT Transaction discarded because of previous errors.' };
      // optimistic locking: a watched key written since WATCH aborts the transaction
      if (watched.some(([key, w]) => state.keyspace(w.db).version(key) !== w.version))
        return { nullArray: true };
      return multi.queued.map((queued) => run(state, connection, queued, queuedRaw.get(queued) ?? []));
    }
    default:
      return run(state, connection, args, raw);
  }
}

const queuedRaw = new WeakMap<string[], Buffer[]>();

function unknownCommand(args: string[]): string {
  const rest = args
    .slice(1)
    .map((a) => `'${a}'`)
    .join(' ');
  return `ERR unknown command '${args[0]}', with args beginning with: ${rest}`;
}

function arity(name: string): string {
  return `ERR wrong number of arguments for '${name.toLowerCase()}' command`;
}

type Handler = (ctx: {
  state: RedisState;
  connection: Connection;
  keyspace: Keyspace;
  args: string[];
  raw: Buffer[];
}) => Reply;

function run(state: RedisState, connection: Connection, args: string[], raw: Buffer[]): Reply {
  const name = (args[0] ?? '').toUpperCase();
  const handler = handlers[name];
  if (handler === undefined) return { error: unknownCommand(args) };
  try {
    return handler({ state, connection, keyspace: state.keyspace(connection.db), args, raw });
  } catch (caught) {
    if (caught instanceof CommandError) return { error: caught.message };
    throw caught;
  }
}

function stringValue(keyspace: Keyspace, key: string): Buffer | null {
  const entry = keyspace.get(key);
  if (entry === undefined) return null;
  if (entry.value.type !== 'string') throw error(wrongType);
  return entry.value.data;
}

function streamValue(keyspace: Keyspace, key: string): StreamValue | undefined {
  const entry = keyspace.get(key);
  if (entry === undefined) return undefined;
  if (entry.value.type !== 'stream') throw error(wrongType);
  return entry.value.stream;
}

function entryReply(entry: StreamEntry): Reply {
  return [formatId(entry.id), entry.fields];
}

function findEntry(stream: StreamValue, id: StreamId): StreamEntry | undefined {
  // entries are kept in id order: binary search
  let low = 0;
  let high = stream.entries.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const candidate = stream.entries[middle] as StreamEntry;
    const order = compareIds(candidate.id, id);
    if (order === 0) return candidate;
    if (order < 0) low = middle + 1;
    else high = middle - 1;
  }
  return undefined;
}

function group(
  keyspace: Keyspace,
  key: string,
  name: string,
  command: string,
): { stream: StreamValue; group: ConsumerGroup } {
  const stream = streamValue(keyspace, key);
  const found = stream?.groups.get(name);
  if (stream === undefined || found === undefined) {
    throw error(`NOGROUP No such key '${key}' or consumer group '${name}' in ${command} command`);
  }
  return { stream, group: found };
}

function sortedPending(group: ConsumerGroup): [StreamId, string, PendingEntry][] {
  return [...group.pending.entries()]
    .map(([id, pending]) => [parseId(id, 0), id, pending] as [StreamId, string, PendingEntry])
    .sort((a, b) => compareIds(a[0], b[0]));
}

const handlers: Record<string, Handler> = {
  PING: ({ args }) => (args.length > 1 ? (args[1] as string) : { simple: 'PONG' }),
  ECHO: ({ args }) => {
    if (args.length !== 2) throw error(arity('ECHO'));
    return args[1] as string;
  },
  // ioredis's ready check reads `loading:0`
  INFO: () =>
    '# Server\r\nredis_version:7.2.0\r\nredis_mode:standalone\r\nexecutable:ada-linecount-local-emulator\r\n\r\n# Persistence\r\nloading:0\r\n',
  SELECT: ({ connection, args }) => {
    const db = integer(args[1]);
    if (db < 0 || db > 15) throw error('ERR DB index is out of range');
    connection.db = db;
    return OK;
  },
  CLIENT: ({ connection, args }) => {
    const sub = (args[1] ?? '').toUpperCase();
    if (sub === 'SETNAME' && args.length === 3) {
      connection.name = args[2];
      return OK;
    }
    // ioredis announces its name and version on connect
    if (sub === 'SETINFO' && args.length === 4) return OK;
    throw error(`ERR unknown subcommand '${args[1]}'. Try CLIENT HELP.`);
  },
  GET: ({ keyspace, args }) => {
    if (args.length !== 2) throw error(arity('GET'));
    return stringValue(keyspace, args[1] as string);
  },
  // a key holding another type reads as nil, not WRONGTYPE (MGET reference)
  MGET: ({ keyspace, args }) => {
    if (args.length < 2) throw error(arity('MGET'));
    return args.slice(1).map((key) => {
      const entry = keyspace.get(key);
      return entry?.value.type === 'string' ? entry.value.data : null;
    });
  },
  SET: ({ keyspace, args, raw }) => {
    if (args.length < 3) throw error(arity('SET'));
    const key = args[1] as string;
    let nx = false;
    let xx = false;
    let ttlMs: number | undefined;
    for (let i = 3; i < args.length; i++) {
      const option = (args[i] as string).toUpperCase();
      if (option === 'NX' && !xx) nx = true;
      else if (option === 'XX' && !nx) xx = true;
      else if ((option === 'EX' || option === 'PX') && ttlMs === undefined) {
        const amount = integer(args[++i]);
        if (amount <= 0) throw error("ERR invalid expire time in 'set' command");
        ttlMs = option === 'EX' ? amount * 1000 : amount;
      } else throw error(syntaxError);
    }
    const exists = keyspace.get(key) !== undefined;
    if ((nx && exists) || (xx && !exists)) return null;
    keyspace.set(key, {
      value: { type: 'string', data: Buffer.from(raw[2] as Buffer) },
      expiresAt: ttlMs === undefined ? undefined : Date.now() + ttlMs,
    });
    return OK;
  },
  DEL: ({ keyspace, args }) => {
    if (args.length < 2) throw error(arity('DEL'));
    return args.slice(1).filter((key) => keyspace.delete(key)).length;
  },
  EXISTS: ({ keyspace, args }) => {
    if (args.length < 2) throw error(arity('EXISTS'));
    return args.slice(1).filter((key) => keyspace.get(key) !== undefined).length;
  },
  PEXPIRE: ({ keyspace, args }) => {
    if (args.length !== 3) throw error(arity('PEXPIRE'));
    const key = args[1] as string;
    const ms = integer(args[2]);
    const entry = keyspace.get(key);
    if (entry === undefined) return 0;
    if (ms <= 0) {
      keyspace.delete(key);
      return 1;
    }
    keyspace.set(key, { ...entry, expiresAt: Date.now() + ms });
    return 1;
  },
  PTTL: ({ keyspace, args }) => {
    if (args.length !== 2) throw error(arity('PTTL'));
    const entry = keyspace.get(args[1] as string);
    if (entry === undefined) return -2;
    return entry.expiresAt === undefined ? -1 : Math.max(0, entry.expiresAt - Date.now());
  },
  SCAN: ({ keyspace, args }) => {
    const cursor = integer(args[1]);
    let pattern: RegExp | undefined;
    let count = 10;
    let type: string | undefined;
    for (let i = 2; i < args.length; i += 2) {
      const option = (args[i] as string).toUpperCase();
      const value = args[i + 1];
      if (value === undefined) throw error(syntaxError);
      if (option === 'MATCH') pattern = globToRegExp(value);
      else if (option === 'COUNT') {
        count = integer(value);
        if (count < 1) throw error(syntaxError);
      } else if (option === 'TYPE') type = value.toLowerCase();
      else throw error(syntaxError);
    }
    // the cursor is a position in the sorted key list: keys present for the
    // whole scan are returned at least once, as Redis guarantees
    const keys = keyspace.keys();
    const page = keys.slice(cursor, cursor + count);
    const next = cursor + count >= keys.length ? 0 : cursor + count;
    const matching = page.filter(
      (key) =>
        (pattern === undefined || pattern.test(key)) &&
        (type === undefined || keyspace.get(key)?.value.type === type),
    );
    return [String(next), matching];
  },
  XADD: ({ keyspace, args, raw }) => {
    const key = args[1] as string;
    let i = 2;
    let makeStream = true;
    if ((args[i] ?? '').toUpperCase() === 'NOMKSTREAM') {
      makeStream = false;
      i += 1;
    }
    const idText = args[i];
    const fields = raw.slice(i + 1);
    if (idText === undefined || fields.length === 0 || fields.length % 2 !== 0) throw error(arity('XADD'));
    let stream = streamValue(keyspace, key);
    if (stream === undefined) {
      if (!makeStream) return null;
      stream = { entries: [], last: minId, groups: new Map() };
    }
    let id: StreamId;
    if (idText === '*') {
      const now = Date.now();
      id = now > stream.last.ms ? { ms: now, seq: 0 } : { ms: stream.last.ms, seq: stream.last.seq + 1 };
    } else {
      id = parseId(idText, 0);
      if (compareIds(id, stream.last) <= 0) {
        throw error('ERR The ID specified in XADD is equal or smaller than the target stream top item');
      }
    }
    stream.entries.push({ id, fields: fields.map((f) => Buffer.from(f)) });
    stream.last = id;
    keyspace.set(key, { value: { type: 'stream', stream }, expiresAt: keyspace.get(key)?.expiresAt });
    return formatId(id);
  },
  XLEN: ({ keyspace, args }) => {
    if (args.length !== 2) throw error(arity('XLEN'));
    return streamValue(keyspace, args[1] as string)?.entries.length ?? 0;
  },
  XRANGE: ({ keyspace, args }) => {
    if (args.length !== 4 && args.length !== 6) throw error(arity('XRANGE'));
    const start = parseBound(args[2] as string, true);
    const end = parseBound(args[3] as string, false);
    let count = Number.POSITIVE_INFINITY;
    if (args.length === 6) {
      if ((args[4] as string).toUpperCase() !== 'COUNT') throw error(syntaxError);
      count = integer(args[5]);
    }
    const stream = streamValue(keyspace, args[1] as string);
    const result: Reply[] = [];
    for (const entry of stream?.entries ?? []) {
      if (result.length >= count) break;
      const afterStart = start.exclusive
        ? compareIds(entry.id, start.id) > 0
        : compareIds(entry.id, start.id) >= 0;
      const beforeEnd = end.exclusive ? compareIds(entry.id, end.id) < 0 : compareIds(entry.id, end.id) <= 0;
      if (afterStart && beforeEnd) result.push(entryReply(entry));
    }
    return result;
  },
  XGROUP: ({ keyspace, args }) => {
    const sub = (args[1] ?? '').toUpperCase();
    if (sub !== 'CREATE') throw error(`ERR unknown subcommand '${args[1]}'. Try XGROUP HELP.`);
    const key = args[2];
    const name = args[3];
    const idText = args[4];
    if (key === undefined || name === undefined || idText === undefined) throw error(arity('XGROUP|CREATE'));
    const options = args.slice(5).map((a) => a.toUpperCase());
    if (options.some((o) => o !== 'MKSTREAM')) throw error(syntaxError);
    let stream = streamValue(keyspace, key);
    if (stream === undefined) {
      if (!options.includes('MKSTREAM')) {
        throw error(
          'ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.',
        );
      }
      stream = { entries: [], last: minId, groups: new Map() };
      keyspace.set(key, { value: { type: 'stream', stream } });
    }
    if (stream.groups.has(name)) throw error('BUSYGROUP Consumer Group name already exists');
    stream.groups.set(name, {
      lastDelivered: idText === '$' ? stream.last : parseId(idText, 0),
      pending: new Map(),
      consumers: new Set(),
    });
    keyspace.touch(key);
    return OK;
  },
  XREADGROUP: ({ keyspace, args }) => {
    if ((args[1] ?? '').toUpperCase() !== 'GROUP' || args.length < 7) throw error(arity('XREADGROUP'));
    const groupName = args[2] as string;
    const consumer = args[3] as string;
    let count = Number.POSITIVE_INFINITY;
    let noAck = false;
    let i = 4;
    for (; i < args.length; i++) {
      const option = (args[i] as string).toUpperCase();
      if (option === 'COUNT') count = integer(args[++i]);
      else if (option === 'NOACK') noAck = true;
      else if (option === 'BLOCK') throw error('ERR BLOCK is not supported by the local Redis emulator');
      else if (option === 'STREAMS') break;
      else throw error(syntaxError);
    }
    const rest = args.slice(i + 1);
    if (rest.length === 0 || rest.length % 2 !== 0) {
      throw error(
        "ERR Unbalanced 'xreadgroup' list of streams: for each stream key an ID or '>' must be specified.",
      );
    }
    const keys = rest.slice(0, rest.length / 2);
    const ids = rest.slice(rest.length / 2);
    const result: Reply[] = [];
    keys.forEach((key, index) => {
      const { stream, group: g } = group(keyspace, key, groupName, 'XREADGROUP');
      g.consumers.add(consumer);
      const idText = ids[index] as string;
      const entries: Reply[] = [];
      if (idText === '>') {
        for (const entry of stream.entries) {
          if (entries.length >= count) break;
          if (compareIds(entry.id, g.lastDelivered) <= 0) continue;
          g.lastDelivered = entry.id;
          if (!noAck) g.pending.set(formatId(entry.id), { consumer, deliveredAt: Date.now(), deliveries: 1 });
          entries.push(entryReply(entry));
        }
        if (entries.length > 0) {
          keyspace.touch(key);
          result.push([key, entries]);
        }
        return;
      }
      // an explicit id reads this consumer's own pending history
      const after = parseId(idText, 0);
      for (const [id, idString, pending] of sortedPending(g)) {
        if (entries.length >= count) break;
        if (pending.consumer !== consumer || compareIds(id, after) <= 0) continue;
        const entry = findEntry(stream, id);
        entries.push(entry === undefined ? [idString, null] : entryReply(entry));
      }
      result.push([key, entries]);
    });
    return result.length === 0 ? { nullArray: true } : result;
  },
  XACK: ({ keyspace, args }) => {
    if (args.length < 4) throw error(arity('XACK'));
    const stream = streamValue(keyspace, args[1] as string);
    const g = stream?.groups.get(args[2] as string);
    if (g === undefined) return 0;
    let acknowledged = 0;
    for (const idText of args.slice(3)) {
      const id = formatId(parseId(idText, 0));
      if (g.pending.delete(id)) acknowledged += 1;
    }
    if (acknowledged > 0) keyspace.touch(args[1] as string);
    return acknowledged;
  },
  XDEL: ({ keyspace, args }) => {
    if (args.length < 3) throw error(arity('XDEL'));
    const stream = streamValue(keyspace, args[1] as string);
    if (stream === undefined) return 0;
    const remove = new Set(args.slice(2).map((idText) => formatId(parseId(idText, 0))));
    const before = stream.entries.length;
    stream.entries = stream.entries.filter((entry) => !remove.has(formatId(entry.id)));
    const deleted = before - stream.entries.length;
    if (deleted > 0) keyspace.touch(args[1] as string);
    return deleted;
  },
  // Redis 7 semantics: [next cursor, claimed entries, ids that no longer exist
  // (removed from the pending list)]
  XAUTOCLAIM: ({ keyspace, args }) => {
    if (args.length < 6) throw error(arity('XAUTOCLAIM'));
    const key = args[1] as string;
    const consumer = args[3] as string;
    const minIdle = integer(args[4]);
    const start = parseBound(args[5] as string, true).id;
    let count = 100;
    let justId = false;
    for (let i = 6; i < args.length; i++) {
      const option = (args[i] as string).toUpperCase();
      if (option === 'COUNT') {
        count = integer(args[++i]);
        if (count < 1) throw error('ERR COUNT must be > 0');
      } else if (option === 'JUSTID') justId = true;
      else throw error(syntaxError);
    }
    const { stream, group: g } = group(keyspace, key, args[2] as string, 'XAUTOCLAIM');
    g.consumers.add(consumer);
    const now = Date.now();
    const claimed: Reply[] = [];
    const deleted: string[] = [];
    let next = '0-0';
    let scanned = 0;
    // Redis claims up to COUNT entries and examines at most 10 × COUNT
    for (const [id, idString, pending] of sortedPending(g)) {
      if (compareIds(id, start) < 0) continue;
      if (claimed.length >= count || scanned >= count * 10) {
        next = idString;
        break;
      }
      scanned += 1;
      if (now - pending.deliveredAt < minIdle) continue;
      const entry = findEntry(stream, id);
      if (entry === undefined) {
        g.pending.delete(idString);
        deleted.push(idString);
        continue;
      }
      g.pending.set(idString, {
        consumer,
        deliveredAt: now,
        deliveries: justId ? pending.deliveries : pending.deliveries + 1,
      });
      claimed.push(justId ? idString : entryReply(entry));
    }
    keyspace.touch(key);
    return [next, claimed, deleted];
  },
  XPENDING: ({ keyspace, args }) => {
    if (args.length !== 3) {
      throw error('ERR the local Redis emulator implements only the summary form: XPENDING key group');
    }
    const { group: g } = group(keyspace, args[1] as string, args[2] as string, 'XPENDING');
    const pending = sortedPending(g);
    if (pending.length === 0) return [0, null, null, { nullArray: true }];
    const perConsumer = new Map<string, number>();
    for (const [, , entry] of pending)
      perConsumer.set(entry.consumer, (perConsumer.get(entry.consumer) ?? 0) + 1);
    return [
      pending.length,
      pending[0]?.[1] ?? null,
      pending.at(-1)?.[1] ?? null,
      [...perConsumer.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, n]) => [name, String(n)]),
    ];
  },
};

function encode(reply: Reply, out: Buffer[]): void {
  if (reply === null) out.push(Buffer.from('$-1\r\n'));
  else if (typeof reply === 'number') out.push(Buffer.from(`:${reply}\r\n`));
  else if (typeof reply === 'string') {
    const data = Buffer.from(reply);
    out.push(Buffer.from(`$${data.length}\r\n`), data, Buffer.from('\r\n'));
  } else if (Buffer.isBuffer(reply))
    out.push(Buffer.from(`$${reply.length}\r\n`), reply, Buffer.from('\r\n'));
  else if (Array.isArray(reply)) {
    out.push(Buffer.from(`*${reply.length}\r\n`));
    for (const item of reply) encode(item, out);
  } else if ('simple' in reply) out.push(Buffer.from(`+${reply.simple}\r\n`));
  else if ('error' in reply) out.push(Buffer.from(`-${reply.error}\r\n`));
  else out.push(Buffer.from('*-1\r\n'));
}

// Incremental RESP2 request parser: arrays of bulk strings (what clients
// send), or inline commands (what a person types into telnet).
class RequestParser {
  private buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[][] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const commands: Buffer[][] = [];
    for (;;) {
      const parsed = this.parseOne();
      if (parsed === undefined) break;
      if (parsed.length > 0) commands.push(parsed);
    }
    return commands;
  }

  private parseOne(): Buffer[] | undefined {
    if (this.buffer.length === 0) return undefined;
    const lineEnd = this.buffer.indexOf('\r\n');
    if (lineEnd === -1) {
      if (this.buffer.length > 64 * 1024) throw new Error('Protocol error: too big inline request');
      return undefined;
    }
    if (this.buffer[0] !== 0x2a /* * */) {
      const line = this.buffer.subarray(0, lineEnd).toString();
      this.buffer = this.buffer.subarray(lineEnd + 2);
      return line
        .trim()
        .split(/\s+/)
        .filter((part) => part !== '')
        .map((part) => Buffer.from(part));
    }
    const count = Number(this.buffer.subarray(1, lineEnd).toString());
    if (!Number.isInteger(count)) throw new Error('Protocol error: invalid multibulk length');
    let offset = lineEnd + 2;
    const items: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const headerEnd = this.buffer.indexOf('\r\n', offset);
      if (headerEnd === -1) return undefined;
      if (this.buffer[offset] !== 0x24 /* $ */) throw new Error("Protocol error: expected '$'");
      const length = Number(this.buffer.subarray(offset + 1, headerEnd).toString());
      const start = headerEnd + 2;
      if (this.buffer.length < start + length + 2) return undefined;
      items.push(Buffer.from(this.buffer.subarray(start, start + length)));
      offset = start + length + 2;
    }
    this.buffer = this.buffer.subarray(offset);
    return items;
  }
}

export async function startRedisEmulator(
  options: { port?: number; host?: string } = {},
): Promise<RedisEmulator> {
  const host = options.host ?? '127.0.0.1';
  const state = new RedisState();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const parser = new RequestParser();
    const connection: Connection = { db: 0, watched: new Map() };
    socket.on('data', (chunk: Buffer) => {
      let commands: Buffer[][];
      try {
        commands = parser.push(chunk);
      } catch (caught) {
        socket.end(`-ERR ${(caught as Error).message}\r\n`);
        return;
      }
      const out: Buffer[] = [];
      let quit = false;
      for (const raw of commands) {
        const args = raw.map((part) => part.toString('utf8'));
        if ((args[0] ?? '').toUpperCase() === 'QUIT') {
          encode(OK, out);
          quit = true;
          break;
        }
        encode(executeCommand(state, connection, args, raw), out);
      }
      if (out.length > 0) socket.write(Buffer.concat(out));
      if (quit) socket.end();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `redis://${host}:${port}`,
    port,
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
