import type { Command, Option } from 'commander';

/** One command of the tree, as completion needs it. */
interface Node {
  /** Space-separated names from the program down, '' for the program itself. */
  path: string;
  subcommands: Array<{ name: string; description: string }>;
  options: Array<{ flags: string[]; description: string; takesValue: boolean; choices: string[] }>;
}

function optionInfo(option: Option): Node['options'][number] {
  return {
    flags: [option.long, option.short].filter((f): f is string => Boolean(f)),
    description: option.description,
    takesValue: option.required || option.optional,
    choices: option.argChoices ?? [],
  };
}

/** Walks commander's tree: every command with its subcommands and options (the program's included). */
function nodes(program: Command): Node[] {
  const global = program.options.map(optionInfo);
  const result: Node[] = [];
  const visit = (command: Command, path: string) => {
    const own = command === program ? [] : command.options.map(optionInfo);
    const subcommands = command.commands.map((c) => ({ name: c.name(), description: c.description() }));
    // commander adds `help <command>` to a command with subcommands when it parses, not before.
    if (command === program && subcommands.length) {
      subcommands.push({ name: 'help', description: 'display help for command' });
    }
    result.push({
      path,
      subcommands,
      options: [
        ...own,
        ...global,
        { flags: ['--help', '-h'], description: 'show help', takesValue: false, choices: [] },
      ],
    });
    for (const sub of command.commands) visit(sub, path ? `${path} ${sub.name()}` : sub.name());
  };
  visit(program, '');
  return result;
}

const sq = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;
/** For zsh `_describe`: a colon in the name must be escaped. */
const described = (name: string, description: string) => `${name.replaceAll(':', '\\:')}:${description}`;

/** Shell functions shared by bash and zsh: the tree as `case` tables. */
function tables(tree: Node[], prefix: string): string {
  const valueFlags = [
    ...new Set(tree.flatMap((n) => n.options.filter((o) => o.takesValue).flatMap((o) => o.flags))),
  ];
  const lines: string[] = [];
  const table = (name: string, rows: Array<[string, string]>) => {
    lines.push(`${prefix}_${name}() {`, '  case "$1" in');
    for (const [key, value] of rows) lines.push(`    ${sq(key)}) printf '%s\\n' ${value} ;;`);
    lines.push('  esac', '}');
  };
  table(
    'subs',
    tree
      .filter((n) => n.subcommands.length)
      .map((n) => [n.path, n.subcommands.map((s) => sq(s.name)).join(' ')]),
  );
  table(
    'opts',
    tree.map((n) => [
      n.path,
      n.options
        .flatMap((o) => o.flags)
        .map(sq)
        .join(' '),
    ]),
  );
  table(
    'subs_described',
    tree
      .filter((n) => n.subcommands.length)
      .map((n) => [n.path, n.subcommands.map((s) => sq(described(s.name, s.description))).join(' ')]),
  );
  table(
    'opts_described',
    tree.map((n) => [
      n.path,
      n.options.flatMap((o) => o.flags.map((f) => sq(described(f, o.description)))).join(' '),
    ]),
  );
  table(
    'choices',
    tree.flatMap((n) =>
      n.options
        .filter((o) => o.choices.length)
        .flatMap((o) =>
          o.flags.map((f): [string, string] => [`${n.path}|${f}`, o.choices.map(sq).join(' ')]),
        ),
    ),
  );
  lines.push(
    `${prefix}_takes_value() {`,
    '  case "$1" in',
    ...(valueFlags.length ? [`    ${valueFlags.map(sq).join('|')}) return 0 ;;`] : []),
    '  esac',
    '  return 1',
    '}',
  );
  return lines.join('\n');
}

/** A bash completion script for `name`, from the command tree. */
function bash(name: string, tree: Node[]): string {
  const fn = `_${name.replace(/\W/g, '_')}`;
  return `# bash completion for ${name}; load with: source <(${name} completion bash)
${tables(tree, fn)}
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local cmdpath="" w s i skip=0
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if ((skip)); then skip=0; continue; fi
    case "$w" in -*) ${fn}_takes_value "$w" && skip=1; continue ;; esac
    for s in $(${fn}_subs "$cmdpath"); do
      if [[ "$s" == "$w" ]]; then cmdpath="\${cmdpath:+$cmdpath }$w"; break; fi
    done
  done
  if [[ "$prev" == -* ]] && ${fn}_takes_value "$prev"; then
    COMPREPLY=($(compgen -W "$(${fn}_choices "$cmdpath|$prev")" -- "$cur"))
  elif [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(${fn}_opts "$cmdpath")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(${fn}_subs "$cmdpath")" -- "$cur"))
  fi
}
complete -F ${fn} ${name}
`;
}

/** A zsh completion script (with descriptions) for `name`. */
function zsh(name: string, tree: Node[]): string {
  const fn = `_${name.replace(/\W/g, '_')}`;
  return `#compdef ${name}
# zsh completion for ${name}; load with: source <(${name} completion zsh)
${tables(tree, fn)}
${fn}() {
  local cmdpath="" w s i skip=0
  local -a items
  for ((i = 2; i < CURRENT; i++)); do
    w="\${words[i]}"
    if ((skip)); then skip=0; continue; fi
    case "$w" in -*) ${fn}_takes_value "$w" && skip=1; continue ;; esac
    for s in \${(f)"$(${fn}_subs "$cmdpath")"}; do
      if [[ "$s" == "$w" ]]; then cmdpath="\${cmdpath:+$cmdpath }$w"; break; fi
    done
  done
  w="\${words[CURRENT-1]}"
  if [[ "$w" == -* ]] && ${fn}_takes_value "$w"; then
    items=(\${(f)"$(${fn}_choices "$cmdpath|$w")"})
    compadd -a items
  elif [[ "$PREFIX" == -* ]]; then
    items=(\${(f)"$(${fn}_opts_described "$cmdpath")"})
    _describe -t options option items
  else
    items=(\${(f)"$(${fn}_subs_described "$cmdpath")"})
    _describe -t commands command items
  fi
}
if [[ "$funcstack[1]" == "${fn}" ]]; then ${fn} "$@"; else compdef ${fn} ${name}; fi
`;
}

/** A fish completion script for `name`: one `complete` line per subcommand and option. */
function fish(name: string, tree: Node[]): string {
  const fn = `__${name.replace(/\W/g, '_')}`;
  const paths = tree.map((n) => n.path).filter(Boolean);
  const valueFlags = [
    ...new Set(tree.flatMap((n) => n.options.filter((o) => o.takesValue).flatMap((o) => o.flags))),
  ];
  const lines = [
    `# fish completion for ${name}; load with: ${name} completion fish | source`,
    `function ${fn}_path`,
    '    set -l cmdpath ""',
    '    set -l skip 0',
    '    for w in (commandline -opc)[2..-1]',
    '        if test $skip = 1; set skip 0; continue; end',
    '        if string match -q -- "-*" $w',
    `            if contains -- $w ${valueFlags.map(sq).join(' ')}; set skip 1; end`,
    '            continue',
    '        end',
    '        set -l candidate (string trim -- "$cmdpath $w")',
    `        if contains -- $candidate ${paths.map(sq).join(' ')}; set cmdpath $candidate; end`,
    '    end',
    '    echo $cmdpath',
    'end',
    `function ${fn}_at; test (${fn}_path) = "$argv[1]"; end`,
    `complete -c ${name} -f`,
  ];
  for (const node of tree) {
    const at = `-n ${sq(`${fn}_at ${sq(node.path)}`)}`;
    for (const sub of node.subcommands)
      lines.push(`complete -c ${name} ${at} -a ${sq(sub.name)} -d ${sq(sub.description)}`);
    for (const option of node.options) {
      const flags = option.flags
        .map((f) => (f.startsWith('--') ? `-l ${sq(f.slice(2))}` : `-s ${sq(f.slice(1))}`))
        .join(' ');
      const value = option.takesValue
        ? option.choices.length
          ? ` -x -a ${sq(option.choices.join(' '))}`
          : ' -r'
        : '';
      lines.push(`complete -c ${name} ${at} ${flags}${value} -d ${sq(option.description)}`);
    }
  }
  return lines.join('\n') + '\n';
}

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** The completion script for `shell`, generated from the program's command tree. */
export function completionScript(program: Command, shell: Shell): string {
  const tree = nodes(program);
  const name = program.name();
  return shell === 'bash' ? bash(name, tree) : shell === 'zsh' ? zsh(name, tree) : fish(name, tree);
}
