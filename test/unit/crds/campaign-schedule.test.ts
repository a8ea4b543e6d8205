/**
 * When a campaign may send: start/end, maximum lateness and the daily window in an IANA time zone, each
 * judged at fixed instants (the clock is an argument: no sleeps, no real time).
 */
import {
  insideWindow,
  isValidTimeZone,
  nextWindowChange,
  scheduleState,
  type DailyWindow,
} from '../../../crds/campaign-schedule.js';

const at = (iso: string): Date => new Date(iso);
const berlinOffice: DailyWindow = {
  timeZone: 'Europe/Berlin',
  start: '09:00',
  end: '18:00',
  days: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'],
};

describe('the daily window', () => {
  it('is open on its weekdays between start and end, local time', () => {
    // 2026-11-30 is a Monday; Berlin is UTC+1 in winter.
    expect(insideWindow(berlinOffice, at('2026-11-30T07:59:00Z'))).toBe(false); // 08:59 local
    expect(insideWindow(berlinOffice, at('2026-11-30T08:00:00Z'))).toBe(true); // 09:00 local
    expect(insideWindow(berlinOffice, at('2026-11-30T16:59:00Z'))).toBe(true); // 17:59 local
    expect(insideWindow(berlinOffice, at('2026-11-30T17:00:00Z'))).toBe(false); // 18:00 local: end is exclusive
    expect(insideWindow(berlinOffice, at('2026-11-29T10:00:00Z'))).toBe(false); // Sunday
  });

  it('follows daylight saving time: the same local hours are different UTC hours in summer', () => {
    // 2026-07-06 is a Monday; Berlin is UTC+2 in summer.
    expect(insideWindow(berlinOffice, at('2026-07-06T07:00:00Z'))).toBe(true); // 09:00 local
    expect(insideWindow(berlinOffice, at('2026-07-06T16:00:00Z'))).toBe(false); // 18:00 local
    // The last Sunday of March 2026 (the 29th): 02:00 local jumps to 03:00.
    const night: DailyWindow = { timeZone: 'Europe/Berlin', start: '01:00', end: '04:00' };
    expect(nextWindowChange(night, at('2026-03-29T00:30:00Z'))?.toISOString()).toBe(
      '2026-03-29T02:00:00.000Z',
    );
  });

  it('runs past midnight when end is before start, and the morning belongs to the day it started on', () => {
    const nights: DailyWindow = { timeZone: 'UTC', start: '22:00', end: '06:00', days: ['Fri'] };
    expect(insideWindow(nights, at('2026-12-04T23:00:00Z'))).toBe(true); // Friday evening
    expect(insideWindow(nights, at('2026-12-05T05:59:00Z'))).toBe(true); // Saturday morning, Friday's night
    expect(insideWindow(nights, at('2026-12-05T23:00:00Z'))).toBe(false); // Saturday evening
    expect(insideWindow(nights, at('2026-12-04T05:00:00Z'))).toBe(false); // Friday morning: Thursday's night
  });

  it('says when it next opens or closes, to the minute', () => {
    expect(nextWindowChange(berlinOffice, at('2026-11-30T12:34:56Z'))?.toISOString()).toBe(
      '2026-11-30T17:00:00.000Z',
    );
    // Friday after closing: next Monday 09:00 local.
    expect(nextWindowChange(berlinOffice, at('2026-12-04T18:00:00Z'))?.toISOString()).toBe(
      '2026-12-07T08:00:00.000Z',
    );
    expect(
      nextWindowChange({ timeZone: 'UTC', start: '00:00', end: '00:00' }, at('2026-12-01T00:00:00Z')),
    ).toBe(undefined);
  });

  it('knows the IANA zones the runtime can use', () => {
    expect(isValidTimeZone('America/New_York')).toBe(true);
    expect(isValidTimeZone('Mars/Olympus_Mons')).toBe(false);
  });
});

describe('scheduleState', () => {
  it('is open without a schedule', () => {
    expect(scheduleState(undefined, at('2026-11-30T00:00:00Z'))).toEqual({ state: 'open' });
  });

  it('waits for startTime, closes at endTime', () => {
    const schedule = { startTime: '2026-12-01T10:00:00Z', endTime: '2026-12-02T10:00:00Z' };
    expect(scheduleState(schedule, at('2026-12-01T09:00:00Z'))).toEqual({
      state: 'notYet',
      opensAt: at('2026-12-01T10:00:00Z'),
      reason: 'BeforeStart',
    });
    expect(scheduleState(schedule, at('2026-12-01T11:00:00Z'))).toEqual({
      state: 'open',
      closesAt: at('2026-12-02T10:00:00Z'),
    });
    expect(scheduleState(schedule, at('2026-12-02T10:00:00Z'))).toEqual({
      state: 'ended',
      reason: 'PastEndTime',
    });
  });

  it('does not start a schedule that was first runnable long after its start (maxLateness)', () => {
    const schedule = { startTime: '2026-12-01T10:00:00Z', maxLatenessSeconds: 3600 };
    expect(scheduleState(schedule, at('2026-12-01T12:00:00Z'), at('2026-12-01T10:30:00Z')).state).toBe(
      'open',
    );
    expect(scheduleState(schedule, at('2026-12-01T12:00:00Z'), at('2026-12-01T11:30:00Z'))).toEqual({
      state: 'ended',
      reason: 'TooLate',
    });
  });

  it('combines the window with start and end: waits for the window, ends when no window opens before endTime', () => {
    const schedule = { window: berlinOffice, endTime: '2026-12-05T00:00:00Z' };
    expect(scheduleState(schedule, at('2026-12-01T06:00:00Z'))).toEqual({
      state: 'notYet',
      opensAt: at('2026-12-01T08:00:00Z'),
      reason: 'OutsideWindow',
    });
    expect(scheduleState(schedule, at('2026-12-01T09:00:00Z'))).toEqual({
      state: 'open',
      closesAt: at('2026-12-01T17:00:00Z'),
    });
    // Friday evening: the next window (Monday) is after endTime.
    expect(scheduleState(schedule, at('2026-12-04T18:00:00Z'))).toEqual({
      state: 'ended',
      reason: 'PastEndTime',
    });
  });
});
