import { Argument, type Command } from 'commander';
import { SHELLS, completionScript, type Shell } from '../completion.js';

/** `robustmq completion bash|zsh|fish`: prints a completion script for the shell. */
export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script (bash: source <(robustmq completion bash))')
    .addArgument(new Argument('<shell>', 'the shell').choices(SHELLS))
    .addHelpText(
      'after',
      `
Load it:
  bash  source <(robustmq completion bash)       or save it under ~/.local/share/bash-completion/completions/robustmq
  zsh   source <(robustmq completion zsh)        or save it as _robustmq in a directory of $fpath
  fish  robustmq completion fish | source        or save it as ~/.config/fish/completions/robustmq.fish`,
    )
    .action((shell: Shell) => {
      process.stdout.write(completionScript(program, shell));
    });
}
