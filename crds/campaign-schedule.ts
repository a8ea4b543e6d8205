/**
 * When a Campaign may send, as a pure function of its schedule and the time: an absolute start and end, a
 * maximum lateness (a schedule found long past is not started), and a daily window in an IANA time zone on
 * chosen weekdays. The operator uses it to say Scheduled/Running/Paused and when that changes; the runtime
 * uses the same function to gate every send. API semantics, hence here beside the schema.
 */

export type Weekday = 'Mon' | 'Tue' | 'Wed' | 'Thu' | 'Fri' | 'Sat' | 'Sun';
export const WEEKDAYS: readonly Weekday[] = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

export interface DailyWindow {
  /** IANA time zone, e.g. "Europe/Berlin". */
  timeZone: string;
  /** "HH:MM", local time; inclusive. */
  start: string;
  /** "HH:MM", local time; exclusive. Before `start`: the window runs past midnight. */
  end: string;
  /** Days the window opens on (the day it starts, for windows past midnight). Default: every day. */
  days?: Weekday[];
}

export interface CampaignScheduleSpec {
  startTime?: string;
  endTime?: string;
  /** Do not start when first able to start more than this long after startTime. */
  maxLatenessSeconds?: number;
  window?: DailyWindow;
}

export type ScheduleState =
  | { state: 'open'; closesAt?: Date }
  | { state: 'notYet'; opensAt: Date; reason: 'BeforeStart' | 'OutsideWindow' }
  | { state: 'ended'; reason: 'PastEndTime' | 'TooLate' };

const parts = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = parts.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    parts.set(timeZone, f);
  }
  return f;
}

/** True for a time zone the runtime can use (validation: the CRD cannot check IANA names). */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

function minutesOf(hhmm: string): number {
  const m = /^([01][0-9]|2[0-3]):([0-5][0-9])$/.exec(hhmm);
  if (!m) throw new Error(`"${hhmm}" is not a time of day HH:MM`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/** Local weekday and minute of the day of `at` in the window's time zone. */
function localTime(at: Date, timeZone: string): { day: Weekday; minute: number } {
  let day: Weekday = 'Mon';
  let hour = 0;
  let minute = 0;
  for (const part of formatter(timeZone).formatToParts(at)) {
    if (part.type === 'weekday') day = part.value as Weekday;
    else if (part.type === 'hour') hour = Number(part.value);
    else if (part.type === 'minute') minute = Number(part.value);
  }
  return { day, minute: hour * 60 + minute };
}

function previousDay(day: Weekday): Weekday {
  return WEEKDAYS[(WEEKDAYS.indexOf(day) + 6) % 7] ?? 'Mon';
}

/** Whether the daily window is open at `at`. */
export function insideWindow(window: DailyWindow, at: Date): boolean {
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  const days = window.days && window.days.length > 0 ? window.days : WEEKDAYS;
  const { day, minute } = localTime(at, window.timeZone);
  if (start === end) return days.includes(day);
  if (start < end) return days.includes(day) && minute >= start && minute < end;
  // Past midnight: the evening part belongs to today, the morning part to the day before.
  if (minute >= start) return days.includes(day);
  if (minute < end) return days.includes(previousDay(day));
  return false;
}

/** Windows are minute-granular; the search steps this far, so a window must stay open at least this long. */
export const MIN_WINDOW_MINUTES = 5;

/**
 * The next whole minute after `from` at which insideWindow changes (within 8 days; a window that never
 * changes returns undefined). Stepping in local-time-agnostic minutes follows DST shifts without calendar
 * arithmetic: coarse steps find the bracket, minute steps inside it find the edge.
 */
export function nextWindowChange(window: DailyWindow, from: Date): Date | undefined {
  const initial = insideWindow(window, from);
  const step = MIN_WINDOW_MINUTES * 60_000;
  const first = Math.floor(from.getTime() / 60_000) * 60_000 + 60_000;
  let previous = first - 60_000;
  for (let t = first; t <= first + 8 * 24 * 3600_000; t += step) {
    if (insideWindow(window, new Date(t)) !== initial) {
      for (let m = previous + 60_000; m < t; m += 60_000)
        if (insideWindow(window, new Date(m)) !== initial) return new Date(m);
      return new Date(t);
    }
    previous = t;
  }
  return undefined;
}

/**
 * May the campaign send at `now`? `firstRunnableAt` is when it first could have started (created, or no
 * longer suspended): with maxLatenessSeconds, a schedule that was first runnable too long after its
 * startTime is not started at all.
 */
export function scheduleState(
  schedule: CampaignScheduleSpec | undefined,
  now: Date,
  firstRunnableAt?: Date,
): ScheduleState {
  const startMs = schedule?.startTime ? Date.parse(schedule.startTime) : undefined;
  const endMs = schedule?.endTime ? Date.parse(schedule.endTime) : undefined;
  if (endMs !== undefined && now.getTime() >= endMs) return { state: 'ended', reason: 'PastEndTime' };
  if (startMs !== undefined && now.getTime() < startMs)
    return { state: 'notYet', opensAt: new Date(startMs), reason: 'BeforeStart' };
  if (startMs !== undefined && schedule?.maxLatenessSeconds !== undefined) {
    const began = (firstRunnableAt ?? now).getTime();
    if (began - startMs > schedule.maxLatenessSeconds * 1000) return { state: 'ended', reason: 'TooLate' };
  }
  const window = schedule?.window;
  if (!window) return endMs === undefined ? { state: 'open' } : { state: 'open', closesAt: new Date(endMs) };
  const change = nextWindowChange(window, now);
  if (insideWindow(window, now)) {
    const closesAt =
      endMs !== undefined && (change === undefined || endMs < change.getTime()) ? new Date(endMs) : change;
    return closesAt ? { state: 'open', closesAt } : { state: 'open' };
  }
  if (!change || (endMs !== undefined && change.getTime() >= endMs))
    return { state: 'ended', reason: 'PastEndTime' };
  return { state: 'notYet', opensAt: change, reason: 'OutsideWindow' };
}
