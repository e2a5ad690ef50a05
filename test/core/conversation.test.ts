import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type ConversationTurn,
  lastTurns,
  rememberTurns,
  SHOWN_REPLIES_MAX_BYTES,
  showReply,
  unrememberedReplies,
} from "../../lib/core/conversation.ts";

const user = (content: string): ConversationTurn => ({ role: "user", content });
const bot = (content: string): ConversationTurn => ({ role: "assistant", content });

describe("rememberTurns", () => {
  it("appends turns in order and keeps the latest within the turn bound", () => {
    const kept = rememberTurns([user("1"), bot("2")], [user("3"), bot("4")], { maxTurns: 3 });
    expect(kept).toEqual([bot("2"), user("3"), bot("4")]);
  });

  it("drops the oldest turns until the contents fit the byte bound, and cuts one turn that alone is too long", () => {
    expect(rememberTurns([user("aaaa"), bot("bbbb")], [user("cccc")], { maxBytes: 9 })).toEqual([
      bot("bbbb"),
      user("cccc"),
    ]);
    // "ї" is two bytes: a cut never splits a character.
    expect(rememberTurns(undefined, [user("їїї")], { maxBytes: 5 })).toEqual([user("її")]);
  });

  it("never exceeds either bound", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ role: fc.constantFrom("user", "assistant"), content: fc.string() }), {
          maxLength: 60,
        }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 200 }),
        (turns, maxTurns, maxBytes) => {
          const kept = rememberTurns([], turns as ConversationTurn[], { maxTurns, maxBytes });
          expect(kept.length).toBeLessThanOrEqual(maxTurns);
          const bytes = kept.reduce((sum, turn) => sum + Buffer.byteLength(turn.content), 0);
          expect(bytes).toBeLessThanOrEqual(maxBytes);
        },
      ),
    );
  });
});

describe("lastTurns", () => {
  it("gives the last N turns oldest first, none for 0 or no conversation", () => {
    const all = [user("1"), bot("2"), user("3")];
    expect(lastTurns(all, 2)).toEqual([bot("2"), user("3")]);
    expect(lastTurns(all, 10)).toEqual(all);
    expect(lastTurns(all, 0)).toEqual([]);
    expect(lastTurns(undefined, 3)).toEqual([]);
  });
});

describe("showReply and unrememberedReplies", () => {
  it("counts every reply and keeps the last ones within the byte bound", () => {
    let shown = showReply(undefined, "one");
    shown = showReply(shown, "two");
    expect(shown).toEqual({ count: 2, last: ["one", "two"] });
    const long = "x".repeat(SHOWN_REPLIES_MAX_BYTES - 3);
    shown = showReply(shown, long);
    expect(shown.count).toBe(3);
    expect(shown.last).toEqual(["two", long]);
    // One reply longer than the bound is cut to it (on a character boundary).
    const huge = showReply(undefined, "ї".repeat(SHOWN_REPLIES_MAX_BYTES));
    expect(Buffer.byteLength(huge.last[0]!, "utf8")).toBe(SHOWN_REPLIES_MAX_BYTES);
  });

  it("answers the replies past those remembered, as many as are still kept", () => {
    const shown = ["a", "b", "c", "d"].reduce<ReturnType<typeof showReply> | undefined>(
      (acc, text) => showReply(acc, text),
      undefined,
    );
    expect(unrememberedReplies(shown, 1)).toEqual(["b", "c", "d"]);
    expect(unrememberedReplies(shown, 4)).toEqual([]);
    expect(unrememberedReplies(shown, 9)).toEqual([]);
    expect(unrememberedReplies(undefined, 0)).toEqual([]);
    // Some were dropped from the state before they could be remembered: the kept ones come.
    expect(unrememberedReplies({ count: 10, last: ["i", "j"] }, 3)).toEqual(["i", "j"]);
  });
});
