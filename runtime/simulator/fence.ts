/**
 * The simulator's session fence: the rules the native addon enforces below JavaScript (native/src/fence.h),
 * kept here in JS so that both backends behave alike. Time is performance.now(): monotonic, and it keeps
 * counting while the process is stopped, so a resumed process finds its deadlines passed.
 */

// Strict on purpose, like the addon: a `close` is this exact text, with at most one integer '@extra' (the
// tag TdClient splices in first), never a text that merely contains one.
const CLOSE_REQUEST = /^\{(?:"@extra":-?\d{1,20},)?"@type":"close"(?:,"@extra":-?\d{1,20})?\}$/;

export function isCloseRequest(requestJson: string): boolean {
  if (!CLOSE_REQUEST.test(requestJson)) return false;
  // The pattern above allows an '@extra' on both sides; only one is a request TDLib would take.
  return requestJson.indexOf('"@extra"') === requestJson.lastIndexOf('"@extra"');
}

interface Fenced {
  deadline: number;
  /** A close went out (from the caller or from the fence): tick() has nothing left to do for it. */
  closeSent: boolean;
}

export class SessionFence {
  private readonly fenced = new Map<number, Fenced>();
  /** Clients that closed after their deadline: their requests stay dropped, like the addon's. */
  private readonly fencedOut = new Set<number>();
  blockedRequests = 0;
  watchdogCloses = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /**
   * Infinity clears the deadline, <= 0 means it has passed. A deadline that has passed is final: later
   * calls change nothing, and the client's requests stay dropped after it has closed.
   */
  setDeadline(clientId: number, remainingMs: number): void {
    if (Number.isNaN(remainingMs)) throw new TypeError('remainingMs must not be NaN');
    const now = this.now();
    const entry = this.fenced.get(clientId);
    if (entry !== undefined && now >= entry.deadline) return;
    if (remainingMs === Infinity) {
      this.fenced.delete(clientId);
      return;
    }
    const deadline = now + Math.max(remainingMs, 0);
    if (entry === undefined) this.fenced.set(clientId, { deadline, closeSent: false });
    else entry.deadline = deadline;
  }

  /** Whether send() may pass the request on; a dropped one is counted. */
  allows(clientId: number, requestJson: string): boolean {
    if (this.fenced.size === 0 && this.fencedOut.size === 0) return true;
    const entry = this.fenced.get(clientId);
    if (entry === undefined) {
      if (!this.fencedOut.has(clientId) || isCloseRequest(requestJson)) return true;
      this.blockedRequests++;
      return false;
    }
    if (isCloseRequest(requestJson)) {
      entry.closeSent = true;
      return true;
    }
    if (this.now() < entry.deadline) return true;
    this.blockedRequests++;
    return false;
  }

  /** Clients past their deadline that no close has gone out for yet; they count as closing from now on. */
  takeOverdue(): number[] {
    if (this.fenced.size === 0) return [];
    const now = this.now();
    const overdue: number[] = [];
    for (const [clientId, entry] of this.fenced) {
      if (entry.closeSent || now < entry.deadline) continue;
      entry.closeSent = true;
      overdue.push(clientId);
    }
    return overdue;
  }

  /** The client reached authorizationStateClosed: it is no longer fenced. */
  forget(clientId: number): void {
    const entry = this.fenced.get(clientId);
    if (entry === undefined) return;
    if (this.now() >= entry.deadline) this.fencedOut.add(clientId);
    this.fenced.delete(clientId);
  }

  clientIds(): number[] {
    return [...this.fenced.keys()];
  }
}
