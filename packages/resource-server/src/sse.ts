/** One Server-Sent Event (HTML Living Standard, "Parsing an event stream"). */
export interface ServerSentEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * Parses a byte stream of Server-Sent Events. Lines end in LF, CRLF or CR; a blank line dispatches
 * the event; comments (`:`) and `retry` are ignored (the subscriber has its own backoff); an event
 * left unterminated when the stream ends is dropped, as the standard says.
 */
export async function* serverSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  /** takes one line; returns the event a blank line completes */
  const line = (text: string): ServerSentEvent | undefined => {
    if (text === '') {
      const done =
        data.length > 0 ? { event: event || 'message', data: data.join('\n'), ...(id && { id }) } : undefined;
      event = '';
      data = [];
      id = undefined;
      return done;
    }
    if (text.startsWith(':')) return undefined;
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    const value = colon < 0 ? '' : text.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
    return undefined;
  };
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    for (;;) {
      const end = buffer.search(/\r\n|\r|\n/);
      // a CR at the end of a chunk may be the first half of a CRLF: wait for the next chunk
      if (end < 0 || (end === buffer.length - 1 && buffer[end] === '\r')) break;
      const text = buffer.slice(0, end);
      buffer = buffer.slice(end + (buffer.startsWith('\r\n', end) ? 2 : 1));
      const done = line(text);
      if (done) yield done;
    }
  }
  // the stream ended on a CR: it was a line end after all
  if (buffer.endsWith('\r')) {
    const done = line(buffer.slice(0, -1));
    if (done) yield done;
  }
}
