// Type declarations of huntgate.js. The wire objects are those of the
// gateway's protocol (docs/protocol.md).

/** Connection state of a HuntClient. */
export type State = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** One leaderboard entry. */
export interface Entry {
  player: string;
  score: number;
}

/** A hunt's status object. */
export interface Status {
  hunt: string;
  epoch: number;
  seq: number;
  players: number;
  treasures_left: number;
  state: 'scheduled' | 'open' | 'ended';
  top: Entry[];
  /** The hunt's schedule as created (RFC 3339, UTC, milliseconds); absent when it has none. */
  starts_at?: string;
  ends_at?: string;
}

interface UpdateBase {
  op: 'update';
  hunt: string;
  epoch: number;
  seq: number;
}

/** A treasure was claimed (reliable). */
export interface ClaimedUpdate extends UpdateBase {
  kind: 'claimed';
  treasure: string;
  player: string;
  points: number;
}

/** The current leaderboard (latest-value: its seq repeats). */
export interface LeaderboardUpdate extends UpdateBase {
  kind: 'leaderboard';
  top: Entry[];
}

/** An event the game backend published (reliable). */
export interface EventUpdate extends UpdateBase {
  kind: 'event';
  data: unknown;
}

/** The hunt ended (reliable). */
export interface EndedUpdate extends UpdateBase {
  kind: 'ended';
  top: Entry[];
}

/** A scheduled hunt reached its starts_at: digs work from now on (reliable). */
export interface StartedUpdate extends UpdateBase {
  kind: 'started';
}

/** Any update pushed for a joined hunt. */
export type Update = ClaimedUpdate | LeaderboardUpdate | EventUpdate | EndedUpdate | StartedUpdate;

/** The reply to dig. */
export interface Dug {
  op: 'dug';
  ref: number;
  hunt: string;
  x: number;
  y: number;
  found: boolean;
  treasure?: string;
  points?: number;
  score?: number;
  rank?: number;
  seq?: number;
}

/** One place on a leaderboard. */
export interface RankEntry {
  rank: number;
  player: string;
  score: number;
}

/** The answer to rank(): this player's place, with neighbours. */
export interface Rank {
  op: 'rank';
  ref: number;
  hunt: string;
  player: string;
  score: number;
  /** 1-based place on the leaderboard. */
  rank: number;
  /** Seq of the last reliable update the answer reflects. */
  seq: number;
  /** Up to `around` players on each side, this player included, best first. */
  around: RankEntry[];
}

/** The WebSocket class to use (the browser's, Node's, or the ws package's). */
export interface WebSocketClass {
  new (url: string): {
    onopen: ((ev: any) => void) | null;
    onmessage: ((ev: { data: any }) => void) | null;
    onclose: ((ev: any) => void) | null;
    onerror: ((ev: any) => void) | null;
    send(data: string): void;
    close(code?: number, reason?: string): void;
  };
}

/** Options of a HuntClient. */
export interface Options {
  /** Player token (HS256 JWT), sent as ?token=. */
  token?: string;
  /** Player id in development mode (--dev), sent as ?player=. */
  player?: string;
  /** WebSocket class; defaults to globalThis.WebSocket. */
  WebSocket?: WebSocketClass;
  /** Backoff between reconnect attempts, or false to close for good when the connection drops. */
  reconnect?: false | { minDelay?: number; maxDelay?: number };
}

/** An error from the gateway (code is the wire code) or from the SDK ('closed', 'disconnected', 'no_websocket', 'connect_failed'). */
export class HuntError extends Error {
  code: string;
  /** The hunt concerned, for errors reported through the 'error' event about a rejoin. */
  hunt?: string;
}

/** Version of the SDK. */
export const VERSION: string;

/** A player's connection to a huntgate gateway, with reconnect and resume. */
export class HuntClient {
  constructor(url: string, opts?: Options);
  readonly state: State;
  /** The hunts joined (or being rejoined). */
  readonly hunts: string[];
  connect(): Promise<void>;
  join(hunt: string): Promise<Status>;
  leave(hunt: string): Promise<void>;
  dig(hunt: string, x: number, y: number): Promise<Dug>;
  status(hunt: string): Promise<Status>;
  /** This player's place in hunt, with up to `around` (0 to 100; default 5) players on each side; rejects with `not_ranked` before a claim. */
  rank(hunt: string, around?: number): Promise<Rank>;
  /** Round trip in milliseconds. */
  ping(): Promise<number>;
  on(event: 'update', fn: (u: Update) => void): () => void;
  on(event: 'reset', fn: (hunt: string, status: Status) => void): () => void;
  on(event: 'state', fn: (s: State) => void): () => void;
  on(event: 'error', fn: (err: HuntError) => void): () => void;
  off(event: string, fn: (...args: any[]) => void): void;
  close(): void;
}
