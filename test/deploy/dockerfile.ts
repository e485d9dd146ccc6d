import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@grantline/testing';
import { DockerfileParser, type Instruction, type JSONInstruction } from 'dockerfile-ast';

export const DOCKERFILE = join(repoRoot, 'deploy', 'docker', 'Dockerfile');

/** deploy/docker/Dockerfile, parsed by dockerfile-ast (the VS Code Docker extension's parser). */
export const readDockerfile = () => {
  const text = readFileSync(DOCKERFILE, 'utf8');
  const dockerfile = DockerfileParser.parse(text);
  const globalArgs = Object.fromEntries(
    dockerfile
      .getInitialARGs()
      .flatMap((arg) => arg.getProperties())
      .map((p) => [p.getName(), p.getValue() ?? '']),
  );
  /** a `${NAME}` or `$NAME` of the ARGs before the first FROM, replaced by its default */
  const expand = (value: string) =>
    value.replace(/\$\{?(\w+)\}?/g, (whole, name: string) => globalArgs[name] ?? whole);
  const stages = dockerfile.getFROMs().map((from) => ({
    name: from.getBuildStage(),
    image: expand(from.getImageName() ?? ''),
    tag: from.getImageTag() ?? (expand(from.getImageName() ?? '').split(':')[1] || null),
    digest: from.getImageDigest(),
    /** the stage's image reference with the global ARGs expanded */
    reference: expand(from.getArgumentsContent()?.split(/\s+/)[0] ?? ''),
    line: from.getRange().start.line,
  }));
  const instructions = dockerfile.getInstructions();
  const runtimeStart = stages.at(-1)?.line ?? 0;
  /** the instructions of the last stage: what the image is */
  const runtime = instructions.filter((i) => i.getRange().start.line >= runtimeStart);
  const last = (keyword: string) => runtime.filter((i) => i.getKeyword() === keyword).at(-1);
  /** the strings of an exec-form (JSON array) instruction; undefined for the shell form */
  const execForm = (instruction: Instruction | undefined) => {
    if (!instruction) return undefined;
    const strings = (instruction as JSONInstruction).getJSONStrings?.() ?? [];
    return strings.length > 0 ? strings.map((s) => s.getJSONValue()) : undefined;
  };
  const env = Object.fromEntries(
    runtime
      .filter((i) => i.getKeyword() === 'ENV')
      .flatMap((i) =>
        (
          i as unknown as { getProperties(): { getName(): string; getValue(): string | null }[] }
        ).getProperties(),
      )
      .map((p) => [p.getName(), p.getValue() ?? '']),
  );
  const healthcheck = last('HEALTHCHECK');
  const healthcheckCommand = healthcheck
    ? (JSON.parse(healthcheck.getArgumentsContent()!.replace(/^.*?\bCMD\s+/s, '')) as string[])
    : undefined;
  return {
    text,
    stages,
    instructions,
    runtime,
    env,
    user: last('USER')?.getArgumentsContent()?.trim(),
    workdir: last('WORKDIR')?.getArgumentsContent()?.trim(),
    entrypoint: execForm(last('ENTRYPOINT')),
    cmd: execForm(last('CMD')),
    healthcheck,
    healthcheckCommand,
    exposed: runtime
      .filter((i) => i.getKeyword() === 'EXPOSE')
      .flatMap((i) => i.getArguments().map((a) => a.getValue())),
  };
};
