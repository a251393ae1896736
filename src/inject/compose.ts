// One recipient's message of an HTTP injection request: the templates rendered with mustache over
// the request's and the recipient's substitution data, then either the RFC 5322 message as given
// or MIME built by nodemailer's MailComposer. Worker thread; CPU only (MailComposer's build is
// asynchronous but reads nothing: file and URL access are off, attachments are bytes).
import Mustache from 'mustache';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { InjectParts, InjectRecipient, InjectRequest } from './request.js';

/**
 * Mustache's lookup, narrowed: a name resolves through the data's own properties only, and a
 * function is never called. The stock lookup follows prototypes ({{constructor}}) and calls what
 * it finds; JSON data holds no functions, but its prototypes do, and a template must not reach them.
 */
class DataContext extends Mustache.Context {
  override push(view: unknown): Mustache.Context {
    return new DataContext(view, this);
  }

  override lookup(name: string): unknown {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    let ctx: Mustache.Context | undefined = this;
    if (name === '.') return typeof this.view === 'function' ? undefined : this.view;
    const path = name.split('.');
    while (ctx !== undefined) {
      let v: unknown = ctx.view;
      let found = true;
      for (const seg of path) {
        if (v !== null && typeof v === 'object' && Object.hasOwn(v, seg)) v = (v as Record<string, unknown>)[seg];
        else {
          found = false;
          break;
        }
      }
      if (found) return typeof v === 'function' ? undefined : v;
      ctx = ctx.parent;
    }
    return undefined;
  }
}

const PLAIN = { escape: (s: unknown): string => String(s) };
const NO_PARTIALS = {};

/** The data a recipient's templates see: the request's substitutions, the recipient's over them,
 *  and `email` and `name` of the recipient unless the data names them itself. */
export function viewOf(req: InjectRequest, r: InjectRecipient): Mustache.Context {
  const view = { email: r.email, name: r.name ?? '', ...req.substitutions, ...r.substitutions };
  return new DataContext(view);
}

/** Renders text where no escaping applies (headers, text bodies, a whole message). */
export function renderPlain(t: string, view: Mustache.Context): string {
  return Mustache.render(t, view, NO_PARTIALS, PLAIN);
}

/** Renders HTML: {{x}} is HTML-escaped, {{{x}}} is not (mustache's rule). */
export function renderHtml(t: string, view: Mustache.Context): string {
  return Mustache.render(t, view, NO_PARTIALS);
}

export interface Composed {
  /** The message, not dot-stuffed (the spool stuffs it); line ends CRLF or LF (the spool makes CRLF). */
  message: Buffer;
  /** Its Message-ID, for the reception record and policy ("<...>"), or null when it has none. */
  messageId: string | null;
}

const MESSAGE_ID = /^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)/im;

/** The recipient's message. Rejects when the parts cannot be built (an address MailComposer refuses). */
export async function compose(req: InjectRequest, r: InjectRecipient, hostname: string): Promise<Composed> {
  const view = viewOf(req, r);
  if (typeof req.content === 'string') {
    const text = renderPlain(req.content, view);
    const end = headerEnd(text);
    const m = MESSAGE_ID.exec(text.slice(0, end));
    return { message: Buffer.from(text, 'utf8'), messageId: m === null ? null : m[1]!.replace(/\s+/g, '') };
  }
  return build(req.content, r, view, hostname);
}

function headerEnd(text: string): number {
  const crlf = text.indexOf('\r\n\r\n');
  const lf = text.indexOf('\n\n');
  if (crlf < 0) return lf < 0 ? text.length : lf;
  return lf < 0 ? crlf : Math.min(crlf, lf);
}

async function build(p: InjectParts, r: InjectRecipient, view: Mustache.Context, hostname: string): Promise<Composed> {
  const headers: { key: string; value: string }[] = p.headers.map(([key, value]) => ({ key, value: renderPlain(value, view) }));
  const mail = new MailComposer({
    from: p.from.name === null ? p.from.email : { name: p.from.name, address: p.from.email },
    to: r.name === null ? r.email : { name: r.name, address: r.email },
    subject: renderPlain(p.subject, view),
    ...(p.text !== null ? { text: renderPlain(p.text, view) } : {}),
    ...(p.html !== null ? { html: renderHtml(p.html, view) } : {}),
    ...(p.replyTo !== null ? { replyTo: p.replyTo } : {}),
    headers,
    attachments: p.attachments.map((a) => ({
      content: a.data, contentType: a.contentType,
      ...(a.fileName !== null ? { filename: a.fileName } : {}),
      ...(a.contentId !== null ? { cid: a.contentId } : {}),
    })),
    // Message-ID on our host name: the message is born here.
    messageId: `<${crypto.randomUUID()}@${hostname}>`,
    disableFileAccess: true,
    disableUrlAccess: true,
    newline: 'win',
  });
  const node = mail.compile();
  // The bytes go to the spool as given; keep Bcc out (there is none) and build once.
  const message = await node.build();
  return { message, messageId: node.messageId() };
}
