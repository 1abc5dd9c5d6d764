// Comfort figures shown on the dashboard: dew point and humidex from air
// temperature and relative humidity, with a comfort word.
//
// These are the earlier dashboard's formulas and thresholds (its
// dashboard/src/lib/comfort.js), kept so that a home sees the same numbers
// after the switch: the Magnus formula with A = 17.625 and B = 243.04 °C for
// the saturation vapour pressure, and humidex computed from that pressure
// (not from the dew point as Environment Canada does; the two differ by a few
// tenths). The words are English translations of the earlier French ones,
// same thresholds: "confortable" < 30 ≤ "lourd" < 40 ≤ "pénible".

/** Magnus coefficients (Alduchov & Eskridge 1996), as the earlier dashboard used them. */
const A = 17.625;
const B = 243.04;

/** Saturation vapour pressure over water in hPa at `t` °C (Magnus). */
export function saturationHpa(t: number): number {
  return 6.112 * Math.exp((A * t) / (B + t));
}

/** Dew point in °C, or null when the humidity is 0 % (no dew point exists). */
export function dewPoint(t: number, rh: number): number | null {
  if (!(rh > 0)) return null;
  const gamma = Math.log(rh / 100) + (A * t) / (B + t);
  return (B * gamma) / (A - gamma);
}

/** Humidex: the temperature felt in humid heat. Never below the air temperature. */
export function humidex(t: number, rh: number): number {
  const e = (rh / 100) * saturationHpa(t);
  const h = t + 0.5555 * (e - 10);
  return h < t ? t : h;
}

/** How a humidex feels, in the earlier dashboard's three steps. */
export type ComfortWord = "comfortable" | "muggy" | "oppressive";

/** The comfort word for a humidex: below 30 comfortable, below 40 muggy, else oppressive. */
export function comfortWord(humidexValue: number): ComfortWord {
  if (humidexValue < 30) return "comfortable";
  if (humidexValue < 40) return "muggy";
  return "oppressive";
}

/** Dew point, humidex and comfort word of one reading. */
export interface Comfort {
  dewPoint: number | null;
  humidex: number;
  word: ComfortWord;
}

/** Everything the dashboard shows about comfort for one reading. */
export function comfort(t: number, rh: number): Comfort {
  const h = humidex(t, rh);
  return { dewPoint: dewPoint(t, rh), humidex: h, word: comfortWord(h) };
}
