// The one event path out of the store. Whatever changes what the store holds
// is announced here after it is committed, whoever caused it (the broker, the
// API, the pages). The live dashboard cards and config publishing subscribe;
// a new consumer subscribes the same way instead of being called by the code
// that makes the change.
//
// Listeners run synchronously right after the commit, inside the call that
// made the change (e.g. `insertReadings`, which the broker waits on before
// sending PUBACKs). A listener must therefore be quick, and its failure is
// isolated: a throw, or the rejection of the promise an async listener
// returns, is logged and never reaches the caller. Nothing a listener does
// can undo a commit or withhold an acknowledgement.

import type { Reading, Status } from "../../shared/contract.ts";
import type { Log } from "../../shared/log.ts";
import type { Device } from "./model.ts";

/** A reading that a transaction stored (a duplicate it ignored is not one). */
export interface CommittedReading {
  deviceId: number;
  deviceUid: string;
  reading: Reading;
}

/**
 * A person's change to a device: registered in a room, moved, renamed,
 * reconfigured, deleted, or the room it is in was renamed.
 */
export interface DeviceChange {
  kind: "created" | "updated" | "deleted";
  deviceUid: string;
  /** The device after the change; null once deleted. */
  device: Device | null;
  /** The room (uid) it was in before the change; null = none. Equal to its room now unless it moved. */
  roomBefore: string | null;
  /** Whether what the sensor is asked to apply (interval, offsets: its retained config message) changed. */
  configChanged: boolean;
}

/** A room created, renamed (or its floor or side changed) or deleted, by a person or as a device was placed in a new room. */
export interface RoomChange {
  kind: "created" | "updated" | "deleted";
  roomUid: string;
}

/** A status message (birth or last will) recorded for a device. */
export interface StatusChange {
  homeId: string;
  deviceUid: string;
  status: Status;
  /** When the broker received it. */
  at: number;
}

/** The events the store emits, by name, with what each listener receives. */
export interface StoreEvents {
  /** One call per committed batch: the readings it stored, in arrival order (never empty). */
  readings: CommittedReading[];
  /** One call per device a change touched. */
  device: DeviceChange;
  /** One call per recorded status message. */
  status: StatusChange;
  /** One call per room a change touched (the `device` events of its devices follow a rename). */
  room: RoomChange;
}

/** A store event's name. */
export type StoreEventName = keyof StoreEvents;

/** A listener of one event; an async listener's rejection is logged like a throw. */
export type StoreListener<K extends StoreEventName> = (event: StoreEvents[K]) => void;

/** What each event's failing listener is logged as. */
const FAILURE: Record<StoreEventName, string> = {
  readings: "a reading listener failed",
  device: "a device listener failed",
  status: "a status listener failed",
  room: "a room listener failed",
};

/** Creates the event hub: the store emits, the rest of the server subscribes with `on`. */
export function createEvents(log?: Log) {
  const listeners: { [K in StoreEventName]: Set<StoreListener<K>> } = {
    readings: new Set(),
    device: new Set(),
    status: new Set(),
    room: new Set(),
  };

  function failed(name: StoreEventName, event: unknown, err: unknown): void {
    const device = (event as { deviceUid?: string }).deviceUid;
    log?.error(FAILURE[name], { device, error: err as Error });
  }

  return {
    /** Calls `listener` with every `name` event from now on; returns an unsubscribe. */
    on<K extends StoreEventName>(name: K, listener: StoreListener<K>): () => void {
      const set = listeners[name] as Set<StoreListener<K>>;
      set.add(listener);
      return () => set.delete(listener);
    },
    /** Tells every listener of `name`; never throws. Call after the change is committed. */
    emit<K extends StoreEventName>(name: K, event: StoreEvents[K]): void {
      for (const listener of listeners[name] as Set<StoreListener<K>>) {
        try {
          // An async listener returns a promise (a void return type admits one).
          const result = listener(event) as unknown;
          if (result instanceof Promise) result.catch((err) => failed(name, event, err));
        } catch (err) {
          failed(name, event, err);
        }
      }
    },
  };
}

/** The event hub's interface. */
export type Events = ReturnType<typeof createEvents>;
