# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_uml_lab_global_optspecs
    string join \n d/dir= state= host= h/help V/version
end

function __fish_uml_lab_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_uml_lab_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_uml_lab_using_subcommand
    set -l cmd (__fish_uml_lab_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c uml_lab -n "__fish_uml_lab_needs_command" -s d -l dir -d 'The lab directory (default: the current directory)' -r -F
complete -c uml_lab -n "__fish_uml_lab_needs_command" -l state -d 'The state directory (default: DIR/.uml_lab)' -r -F
complete -c uml_lab -n "__fish_uml_lab_needs_command" -l host -d 'The name of this host in a lab split over hosts (machine[host]=NAME)' -r
complete -c uml_lab -n "__fish_uml_lab_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_lab -n "__fish_uml_lab_needs_command" -s V -l version -d 'Print version'
complete -c uml_lab -n "__fish_uml_lab_needs_command" -f -a "start" -d 'Boot the lab (or MACHINEs) in dependency order (Netkit\'s lstart)'
complete -c uml_lab -n "__fish_uml_lab_needs_command" -f -a "stop" -d 'Run shutdown scripts and halt the lab or MACHINEs (Netkit\'s lhalt)'
complete -c uml_lab -n "__fish_uml_lab_needs_command" -f -a "clean" -d 'Stop the lab and delete its state: disks, logs (Netkit\'s lclean)'
complete -c uml_lab -n "__fish_uml_lab_needs_command" -f -a "status" -d 'Machines, state, pids, interfaces and domains (Netkit\'s linfo)'
complete -c uml_lab -n "__fish_uml_lab_needs_command" -f -a "exec" -d 'Run a command in a running machine; its output and status'
complete -c uml_lab -n "__fish_uml_lab_needs_command" -f -a "test" -d 'Run _test/MACHINE.test in each machine and compare with _test/signature/ (Netkit\'s ltest)'
complete -c uml_lab -n "__fish_uml_lab_needs_command" -f -a "graph" -d 'The topology as Graphviz dot (or SVG with --svg, through dot)'
complete -c uml_lab -n "__fish_uml_lab_needs_command" -f -a "console" -d 'Attach to a machine\'s console in this terminal (Ctrl-] detaches)'
complete -c uml_lab -n "__fish_uml_lab_needs_command" -f -a "capture" -d 'Capture a running collision domain\'s frames as pcap (to stdout or FILE)'
complete -c uml_lab -n "__fish_uml_lab_needs_command" -f -a "capture-relay" -d 'The relay beside each switch that serves its captures (internal)'
complete -c uml_lab -n "__fish_uml_lab_needs_command" -f -a "image" -d 'Build a Debian root image for labs (`image build OUT`; needs root)'
complete -c uml_lab -n "__fish_uml_lab_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand start" -l image -d 'Root image for machines without their own [image]' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand start" -l kernel -d 'The guest kernel (default: `linux` beside uml_lab, else on PATH)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand start" -l timeout -d 'Seconds one machine may take to finish its startup scripts' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand start" -s d -l dir -d 'The lab directory (default: the current directory)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand start" -l state -d 'The state directory (default: DIR/.uml_lab)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand start" -l host -d 'The name of this host in a lab split over hosts (machine[host]=NAME)' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand start" -l no-wait -d 'Return once every machine is booting, without waiting for its startup scripts'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand start" -s q -l quiet -d 'No progress bar'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand start" -l hostlab-ro -d 'Mount the lab directory read-only at /hostlab in each machine'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand start" -l no-hosthome -d 'Do not mount the user\'s home ($HOME) at /hosthome'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand start" -l no-capture -d 'Start the switches without their capture relays'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand start" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand stop" -l timeout -d 'Seconds the shutdown scripts and the halt may take' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand stop" -s d -l dir -d 'The lab directory (default: the current directory)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand stop" -l state -d 'The state directory (default: DIR/.uml_lab)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand stop" -l host -d 'The name of this host in a lab split over hosts (machine[host]=NAME)' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand stop" -s f -l force -d 'Kill at once: no shutdown scripts, no halt'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand stop" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand clean" -s d -l dir -d 'The lab directory (default: the current directory)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand clean" -l state -d 'The state directory (default: DIR/.uml_lab)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand clean" -l host -d 'The name of this host in a lab split over hosts (machine[host]=NAME)' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand clean" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand status" -s d -l dir -d 'The lab directory (default: the current directory)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand status" -l state -d 'The state directory (default: DIR/.uml_lab)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand status" -l host -d 'The name of this host in a lab split over hosts (machine[host]=NAME)' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand status" -l json -d 'Print JSON'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand exec" -l timeout -d 'Seconds to wait for the command (default: no limit)' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand exec" -s d -l dir -d 'The lab directory (default: the current directory)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand exec" -l state -d 'The state directory (default: DIR/.uml_lab)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand exec" -l host -d 'The name of this host in a lab split over hosts (machine[host]=NAME)' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand exec" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand test" -l timeout -d 'Seconds one machine\'s test may take' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand test" -s d -l dir -d 'The lab directory (default: the current directory)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand test" -l state -d 'The state directory (default: DIR/.uml_lab)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand test" -l host -d 'The name of this host in a lab split over hosts (machine[host]=NAME)' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand test" -l signature -d 'Write the results as the new signatures instead'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand test" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand graph" -l svg -d 'Write an SVG picture to FILE (needs Graphviz\'s dot)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand graph" -s d -l dir -d 'The lab directory (default: the current directory)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand graph" -l state -d 'The state directory (default: DIR/.uml_lab)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand graph" -l host -d 'The name of this host in a lab split over hosts (machine[host]=NAME)' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand graph" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand console" -s d -l dir -d 'The lab directory (default: the current directory)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand console" -l state -d 'The state directory (default: DIR/.uml_lab)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand console" -l host -d 'The name of this host in a lab split over hosts (machine[host]=NAME)' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand console" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand capture" -s w -d 'Write the capture to FILE instead of standard output' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand capture" -s c -d 'Stop after COUNT frames (default: when interrupted or when the domain stops)' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand capture" -s d -l dir -d 'The lab directory (default: the current directory)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand capture" -l state -d 'The state directory (default: DIR/.uml_lab)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand capture" -l host -d 'The name of this host in a lab split over hosts (machine[host]=NAME)' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand capture" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand capture-relay" -s d -l dir -d 'The lab directory (default: the current directory)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand capture-relay" -l state -d 'The state directory (default: DIR/.uml_lab)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand capture-relay" -l host -d 'The name of this host in a lab split over hosts (machine[host]=NAME)' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand capture-relay" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand image" -l packages -d 'More packages to install, comma- or space-separated (repeatable)' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand image" -l suite -d 'The Debian suite debootstrap installs' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand image" -l mirror -d 'The archive debootstrap fetches from' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand image" -l size -d 'The image\'s size in MiB (a sparse file)' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand image" -s d -l dir -d 'The lab directory (default: the current directory)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand image" -l state -d 'The state directory (default: DIR/.uml_lab)' -r -F
complete -c uml_lab -n "__fish_uml_lab_using_subcommand image" -l host -d 'The name of this host in a lab split over hosts (machine[host]=NAME)' -r
complete -c uml_lab -n "__fish_uml_lab_using_subcommand image" -l print-recipe -d 'Print the recipe (every step and file written) and exit'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand image" -s q -l quiet -d 'No progress display'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand image" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand help; and not __fish_seen_subcommand_from start stop clean status exec test graph console capture capture-relay image help" -f -a "start" -d 'Boot the lab (or MACHINEs) in dependency order (Netkit\'s lstart)'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand help; and not __fish_seen_subcommand_from start stop clean status exec test graph console capture capture-relay image help" -f -a "stop" -d 'Run shutdown scripts and halt the lab or MACHINEs (Netkit\'s lhalt)'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand help; and not __fish_seen_subcommand_from start stop clean status exec test graph console capture capture-relay image help" -f -a "clean" -d 'Stop the lab and delete its state: disks, logs (Netkit\'s lclean)'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand help; and not __fish_seen_subcommand_from start stop clean status exec test graph console capture capture-relay image help" -f -a "status" -d 'Machines, state, pids, interfaces and domains (Netkit\'s linfo)'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand help; and not __fish_seen_subcommand_from start stop clean status exec test graph console capture capture-relay image help" -f -a "exec" -d 'Run a command in a running machine; its output and status'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand help; and not __fish_seen_subcommand_from start stop clean status exec test graph console capture capture-relay image help" -f -a "test" -d 'Run _test/MACHINE.test in each machine and compare with _test/signature/ (Netkit\'s ltest)'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand help; and not __fish_seen_subcommand_from start stop clean status exec test graph console capture capture-relay image help" -f -a "graph" -d 'The topology as Graphviz dot (or SVG with --svg, through dot)'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand help; and not __fish_seen_subcommand_from start stop clean status exec test graph console capture capture-relay image help" -f -a "console" -d 'Attach to a machine\'s console in this terminal (Ctrl-] detaches)'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand help; and not __fish_seen_subcommand_from start stop clean status exec test graph console capture capture-relay image help" -f -a "capture" -d 'Capture a running collision domain\'s frames as pcap (to stdout or FILE)'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand help; and not __fish_seen_subcommand_from start stop clean status exec test graph console capture capture-relay image help" -f -a "capture-relay" -d 'The relay beside each switch that serves its captures (internal)'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand help; and not __fish_seen_subcommand_from start stop clean status exec test graph console capture capture-relay image help" -f -a "image" -d 'Build a Debian root image for labs (`image build OUT`; needs root)'
complete -c uml_lab -n "__fish_uml_lab_using_subcommand help; and not __fish_seen_subcommand_from start stop clean status exec test graph console capture capture-relay image help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
