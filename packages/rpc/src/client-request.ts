import { ErrorCode, RobustMQError } from '@robustmq/core';
import { decodeBody } from './body.js';
import { fromErrorBody } from './errors.js';
import { FrameKind, ProtocolError, type EncodedFrame, type Frame } from './frame.js';

/** A request as the client tracks it, from queued to answered. */
export interface ClientRequest {
  /** The encoded request frame; its id and deadline are stamped when it is sent. */
  readonly frame: EncodedFrame;
  readonly method: string;
  /** When the caller stops waiting, in `Date.now()` ms; undefined for none. */
  readonly deadlineAt: number | undefined;
  /** Set when sent. */
  id: number;
  /** Takes a frame the server sent for this request; returns true once the request is complete. */
  onFrame(frame: Frame): boolean;
  /** Ends the request with `error` (deadline, lost connection, close). */
  fail(error: RobustMQError): void;
}

/** Decodes the body of a frame, or undefined when it has none. */
export function frameBody(frame: Frame): unknown {
  if (frame.head === undefined) return undefined;
  try {
    return decodeBody(frame.head, frame.attachments);
  } catch (error) {
    throw new RobustMQError(ErrorCode.Internal, 'the server sent an unreadable body', { cause: error });
  }
}

/** A request/response call. */
export class UnaryRequest implements ClientRequest {
  id = 0;
  private settled = false;

  constructor(
    readonly method: string,
    readonly frame: EncodedFrame,
    readonly deadlineAt: number | undefined,
    private readonly resolve: (value: unknown) => void,
    private readonly reject: (error: RobustMQError) => void,
    private readonly onSettled: () => void,
  ) {}

  onFrame(frame: Frame): boolean {
    if (frame.kind === FrameKind.Response) {
      let body: unknown;
      try {
        body = frameBody(frame);
      } catch (error) {
        this.settle(() => this.reject(error as RobustMQError));
        return true;
      }
      this.settle(() => this.resolve(body));
      return true;
    }
    if (frame.kind === FrameKind.Error) {
      let error: RobustMQError;
      try {
        error = fromErrorBody(frameBody(frame));
      } catch (unreadable) {
        error = unreadable as RobustMQError;
      }
      this.settle(() => this.reject(error));
      return true;
    }
    throw new ProtocolError(`frame of kind ${frame.kind} for call ${frame.callId}, which is not a stream`);
  }

  fail(error: RobustMQError): void {
    this.settle(() => this.reject(error));
  }

  private settle(action: () => void): void {
    if (this.settled) return;
    this.settled = true;
    this.onSettled();
    action();
  }
}
