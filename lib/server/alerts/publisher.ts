// Alert states on MQTT, for Home Assistant and Node-RED: one retained
// message per rule and device, `home/{home_id}/alerts/rule-{rule_id}-{device_uid}`,
// holding its newest incident's state (open, acknowledged, resolved; SPEC's
// "Alerts over MQTT"). Published in-process through the embedded broker, never
// as a client; again for every rule and device at start (the broker keeps
// retained messages in memory only); cleared (an empty retained message) when
// the rule or the device is deleted, so retained alert states never outgrow
// the rules × devices that exist.

import type { Log } from "../../shared/log.ts";
import type { Broker } from "../mqtt/broker.ts";
import type { IncidentRow } from "../store/store.ts";
import { mqttState } from "./messages.ts";

/** The topic of a rule's state for one device. */
export const alertTopic = (homeId: string, ruleId: number, deviceUid: string): string =>
  `home/${homeId}/alerts/rule-${ruleId}-${deviceUid}`;

/** The topic a "send test" on the MQTT channel publishes to (not retained). */
export const testTopic = (homeId: string): string => `home/${homeId}/alerts/test`;

/** Creates the publisher over the broker. */
export function createAlertPublisher(deps: { broker: Pick<Broker, "publish">; log: Log }) {
  const { broker, log } = deps;

  function send(topic: string, payload: string, retain: boolean): Promise<void> {
    return broker.publish(topic, payload, { retain }).catch((err: Error) => {
      log.error("cannot publish an alert state", { topic, error: err });
    });
  }

  return {
    /** Publishes an incident's state (retained). An incident whose rule is gone has no topic any more. */
    publish(i: IncidentRow): Promise<void> {
      if (i.rule_id === null) return Promise.resolve();
      return send(alertTopic(i.home_id, i.rule_id, i.device_uid), JSON.stringify(mqttState(i)), true);
    },
    /** Removes the retained state of a rule and device. */
    clear: (homeId: string, ruleId: number, deviceUid: string): Promise<void> =>
      send(alertTopic(homeId, ruleId, deviceUid), "", true),
    /** Publishes a test message (not retained); rejects when the broker cannot. */
    test: (homeId: string, payload: string): Promise<void> => broker.publish(testTopic(homeId), payload, { retain: false }),
  };
}

/** The publisher's interface. */
export type AlertPublisher = ReturnType<typeof createAlertPublisher>;
