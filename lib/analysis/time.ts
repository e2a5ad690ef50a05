/**
 * `Date.parse` of the timestamps the history writes, without the cost of `Date.parse`:
 * the canonical `Date#toISOString` form `YYYY-MM-DDTHH:mm:ss.sssZ` is read digit by digit
 * (a few tens of nanoseconds instead of most of a microsecond; the analysis reads two per
 * record). Anything else (another form, an out-of-range field, a leap second, "24:00")
 * goes to `Date.parse`, so the result is `Date.parse(text)` for every input.
 */

const DAY_MS = 86_400_000;

/** Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** The last date read and its epoch ms: a record's start and finish are mostly on one day. */
let lastDateKey = -1;
let lastDateMs = 0;

/** Epoch ms of an ISO timestamp, exactly as `Date.parse(text)` (NaN when it is not one). */
export function parseTimestamp(text: string): number {
  if (
    typeof text !== "string" ||
    text.length !== 24 ||
    text.charCodeAt(4) !== 45 || // -
    text.charCodeAt(7) !== 45 ||
    text.charCodeAt(10) !== 84 || // T
    text.charCodeAt(13) !== 58 || // :
    text.charCodeAt(16) !== 58 ||
    text.charCodeAt(19) !== 46 || // .
    text.charCodeAt(23) !== 90 // Z
  ) {
    return Date.parse(text);
  }
  const y1 = text.charCodeAt(0) - 48;
  const y2 = text.charCodeAt(1) - 48;
  const y3 = text.charCodeAt(2) - 48;
  const y4 = text.charCodeAt(3) - 48;
  const mo1 = text.charCodeAt(5) - 48;
  const mo2 = text.charCodeAt(6) - 48;
  const d1 = text.charCodeAt(8) - 48;
  const d2 = text.charCodeAt(9) - 48;
  const h1 = text.charCodeAt(11) - 48;
  const h2 = text.charCodeAt(12) - 48;
  const mi1 = text.charCodeAt(14) - 48;
  const mi2 = text.charCodeAt(15) - 48;
  const s1 = text.charCodeAt(17) - 48;
  const s2 = text.charCodeAt(18) - 48;
  const ms1 = text.charCodeAt(20) - 48;
  const ms2 = text.charCodeAt(21) - 48;
  const ms3 = text.charCodeAt(22) - 48;
  // `>>> 0`: a character below "0" becomes a large number, so one comparison tests both ends.
  if (
    y1 >>> 0 > 9 ||
    y2 >>> 0 > 9 ||
    y3 >>> 0 > 9 ||
    y4 >>> 0 > 9 ||
    mo1 >>> 0 > 1 ||
    mo2 >>> 0 > 9 ||
    d1 >>> 0 > 3 ||
    d2 >>> 0 > 9 ||
    h1 >>> 0 > 2 ||
    h2 >>> 0 > 9 ||
    mi1 >>> 0 > 5 ||
    mi2 >>> 0 > 9 ||
    s1 >>> 0 > 5 ||
    s2 >>> 0 > 9 ||
    ms1 >>> 0 > 9 ||
    ms2 >>> 0 > 9 ||
    ms3 >>> 0 > 9
  ) {
    return Date.parse(text);
  }
  const year = ((y1 * 10 + y2) * 10 + y3) * 10 + y4;
  const month = mo1 * 10 + mo2;
  const day = d1 * 10 + d2;
  const hours = h1 * 10 + h2;
  if (month < 1 || month > 12 || day < 1 || hours > 23) return Date.parse(text);
  const minutes = mi1 * 10 + mi2;
  const seconds = s1 * 10 + s2;
  const millis = (ms1 * 10 + ms2) * 10 + ms3;
  const dateKey = (year * 100 + month) * 100 + day;
  if (dateKey !== lastDateKey) {
    if (day > daysInMonth(year, month)) return Date.parse(text);
    lastDateMs = daysFromCivil(year, month, day) * DAY_MS;
    lastDateKey = dateKey;
  }
  return lastDateMs + ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis;
}

/** The UTC day (`YYYY-MM-DD`) of an ISO time; today when it does not parse. */
export function dayOf(iso: string, now: number = Date.now()): string {
  const ms = Date.parse(iso);
  return new Date(Number.isNaN(ms) ? now : ms).toISOString().slice(0, 10);
}
