# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_uml_cow_global_optspecs
    string join \n json h/help V/version
end

function __fish_uml_cow_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_uml_cow_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_uml_cow_using_subcommand
    set -l cmd (__fish_uml_cow_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c uml_cow -n "__fish_uml_cow_needs_command" -l json -d 'Print JSON instead of text'
complete -c uml_cow -n "__fish_uml_cow_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_cow -n "__fish_uml_cow_needs_command" -s V -l version -d 'Print version'
complete -c uml_cow -n "__fish_uml_cow_needs_command" -f -a "info" -d 'Show the header, the backing file\'s state and how much is dirty'
complete -c uml_cow -n "__fish_uml_cow_needs_command" -f -a "rebase" -d 'Point the COW at a moved or copied backing file of the same size and record its mtime'
complete -c uml_cow -n "__fish_uml_cow_needs_command" -f -a "check" -d 'Check the header, the bitmap and the file length'
complete -c uml_cow -n "__fish_uml_cow_needs_command" -f -a "convert" -d 'Convert between a UML COW file, a qcow2 overlay and a raw image'
complete -c uml_cow -n "__fish_uml_cow_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c uml_cow -n "__fish_uml_cow_using_subcommand info" -s b -l backing -d 'Compare with BACKING instead of the recorded backing file' -r -F
complete -c uml_cow -n "__fish_uml_cow_using_subcommand info" -l json -d 'Print JSON instead of text'
complete -c uml_cow -n "__fish_uml_cow_using_subcommand info" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_cow -n "__fish_uml_cow_using_subcommand rebase" -l json -d 'Print JSON instead of text'
complete -c uml_cow -n "__fish_uml_cow_using_subcommand rebase" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_cow -n "__fish_uml_cow_using_subcommand check" -l json -d 'Print JSON instead of text'
complete -c uml_cow -n "__fish_uml_cow_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_cow -n "__fish_uml_cow_using_subcommand convert" -s O -d 'The output format: cow, qcow2 or raw' -r -f -a "cow\t''
qcow2\t''
raw\t''"
complete -c uml_cow -n "__fish_uml_cow_using_subcommand convert" -s q -l quiet -d 'No progress bar'
complete -c uml_cow -n "__fish_uml_cow_using_subcommand convert" -l json -d 'Print JSON instead of text'
complete -c uml_cow -n "__fish_uml_cow_using_subcommand convert" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_cow -n "__fish_uml_cow_using_subcommand help; and not __fish_seen_subcommand_from info rebase check convert help" -f -a "info" -d 'Show the header, the backing file\'s state and how much is dirty'
complete -c uml_cow -n "__fish_uml_cow_using_subcommand help; and not __fish_seen_subcommand_from info rebase check convert help" -f -a "rebase" -d 'Point the COW at a moved or copied backing file of the same size and record its mtime'
complete -c uml_cow -n "__fish_uml_cow_using_subcommand help; and not __fish_seen_subcommand_from info rebase check convert help" -f -a "check" -d 'Check the header, the bitmap and the file length'
complete -c uml_cow -n "__fish_uml_cow_using_subcommand help; and not __fish_seen_subcommand_from info rebase check convert help" -f -a "convert" -d 'Convert between a UML COW file, a qcow2 overlay and a raw image'
complete -c uml_cow -n "__fish_uml_cow_using_subcommand help; and not __fish_seen_subcommand_from info rebase check convert help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
