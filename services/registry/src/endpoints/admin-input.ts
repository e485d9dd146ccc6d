import type { NextFunction, Request, Response } from 'express';
import type { z } from 'zod';

/** Admin API input: bad input is a 400 problem naming the field. */
export class BadInput extends Error {}

export const parse = <S extends z.ZodType>(schema: S, body: unknown): z.infer<S> => {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  throw new BadInput(
    result.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '),
  );
};

/** An async handler whose rejection goes to the router's error handler. */
export const wrap =
  (fn: (req: Request, res: Response) => Promise<unknown>) =>
  (req: Request, res: Response, next: NextFunction) =>
    fn(req, res).catch(next);
