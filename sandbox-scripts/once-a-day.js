// once-a-day.js — a mailing list where each member may post once per UTC day.
//
//   Subject "subscribe" / "unsubscribe" → join or leave (with a confirmation).
//   A member's first post of the (UTC) day → sent on to every other member, and kept in the
//   list's archive feed (thwonk.feed("archive"): follow it live on Redis).
//   A member's further posts that day → a polite refusal saying when they may post again.
//   Anything from a stranger → a polite refusal.
//
// Files: members.json (array of addresses), last-post.json ({address: "YYYY-MM-DD"}).

const MEMBERS = "members.json";
const LAST_POST = "last-post.json";

// The day of the trigger's time, UTC: thwonk.now() is when the message arrived.
function utcDay(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

export function onMessage(msg, thwonk) {
  const sender = (msg.sender.address || msg.from).toLowerCase();
  const command = msg.subject.trim().toLowerCase();
  const members = thwonk.files.readJSON(MEMBERS) ?? [];
  const isMember = members.includes(sender);

  if (command === "subscribe") {
    if (!isMember) {
      thwonk.files.writeJSON(MEMBERS, [...members, sender]);
    }
    thwonk.reply(msg, {
      text: `You are on ${thwonk.address}. You may post once a day (UTC). Welcome!`,
    });
    return;
  }
  if (command === "unsubscribe") {
    thwonk.files.writeJSON(MEMBERS, members.filter((m) => m !== sender));
    thwonk.reply(msg, { text: `You have left ${thwonk.address}. Goodbye!` });
    return;
  }
  if (!isMember) {
    thwonk.reply(msg, {
      text: `Sorry, only members can post to ${thwonk.address}. ` +
        `Send a message with the subject "subscribe" to join.`,
    });
    return;
  }

  const today = utcDay(thwonk.now());
  const lastPost = thwonk.files.readJSON(LAST_POST) ?? {};
  if (lastPost[sender] === today) {
    thwonk.reply(msg, {
      text: `Thank you for writing! On ${thwonk.address} each member may post once a day, ` +
        `and you have already posted today (${today}, UTC). ` +
        `Please send it again after midnight UTC.`,
    });
    thwonk.log(`second post of ${today} from ${sender} refused`);
    return;
  }

  lastPost[sender] = today;
  thwonk.files.writeJSON(LAST_POST, lastPost);
  for (const member of members) {
    if (member !== sender) {
      thwonk.send({ to: member, subject: msg.subject, text: msg.text });
    }
  }
  thwonk.feed("archive").publish(
    { from: sender, subject: msg.subject, text: msg.text, day: today },
    msg.id,
  );
  thwonk.log(`post from ${sender} sent to ${members.length - 1} members`);
}
