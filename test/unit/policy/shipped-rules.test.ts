// The shipped Shaping_Rule set (share/shaping-rules.conf): each rule fires on the reply its
// provider documents (from that provider's MX), no rule matches a reply vipmta itself generates,
// and the file loads without an error.
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../../src/config/index.js';
import { classify } from '../../../src/policy/bounce-class.js';
import { RuleBook, type ReplyEvent } from '../../../src/policy/shaping-rules.js';
import { LOCAL_FAILURES } from '../../../src/delivery/results.js';

const rules = defaultConfig({ cwd: '/' }).shapingRules;

/** The replies each provider documents (their links left out); the MX is null where it comes from
 *  the rule's own `Mx` (its first glob with a label for the `*`), so this file names no real host. */
const DOCUMENTED: Array<[rule: string, mx: string | null, reply: string]> = [
  ['yahoo-tss04', null, '421 4.7.0 [TSS04] Messages from 198.51.100.7 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1'],
  ['yahoo-ts0x', null, '421 4.7.1 [TS03] All messages from 198.51.100.7 will be permanently deferred; Retrying will NOT succeed.'],
  ['gmail-rate-limited', null, '421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited.'],
  ['outlook-4.7.650', null, '451 4.7.650 The mail server [198.51.100.7] has been temporarily rate limited due to IP reputation.'],
  ['outlook-blocklist', null, "550 5.7.1 Unfortunately, messages from [198.51.100.7] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150)."],
  ['orange-too-many-connections', null, '421 mwinf5c10 ME Trop de connexions, veuillez verifier votre configuration. Too many connections, slow down. OFR005_104 [104]'],
  ['too-many-connections', 'mx.example.net', '421 4.7.0 mx.example.net Error: too many connections from 198.51.100.7'],
];

function ev(mx: string, reply: string): ReplyEvent {
  return { binding: 'b1', domain: 'example.com', destination: 'example.com', mx, reply, cls: classify({ code: Number(reply.slice(0, 3)), text: reply }) };
}

describe('the shipped shaping rules', () => {
  it('load with the built-in configuration', () => {
    expect(rules.map((r) => r.name).sort()).toEqual(DOCUMENTED.map(([r]) => r).sort());
  });

  for (const [name, documentedMx, reply] of DOCUMENTED) {
    it(`${name} fires on its provider's documented reply`, () => {
      const glob = rules.find((r) => r.name === name)?.options.Mx?.[0];
      const mx = documentedMx ?? glob!.replace('*', 'mx1');
      const book = new RuleBook(rules);
      const fired: string[] = [];
      // Up to its threshold's count of matches within a minute.
      for (let i = 0; i < 5 && fired.length === 0; i++) fired.push(...book.observe(ev(mx, reply), 1_000 + i).map((f) => f.rule));
      expect(fired).toEqual([name]);
    });
  }

  // What delivery records without a reply from the receiver (DNS, connect, lost connection, cut,
  // ...). The listener's replies (REPLIES' other rows) are not among them: when the receiver is
  // another vipmta, "421 4.7.0 Too many connections from your address" is its real reply and
  // reducing connections is the right answer to it.
  it('never match a failure vipmta records itself, whatever the host', () => {
    const ours = Object.values(LOCAL_FAILURES).map((r) => `${r.code} ${r.text}`);
    expect(ours.length).toBeGreaterThan(10);
    for (const r of rules) {
      if (r.match === null) continue;
      for (const line of ours) expect(r.match.test(line), `${r.name} matches "${line}"`).toBe(false);
    }
  });
});
