complete -c uml_mconsole -l timeout -d 'Seconds to wait for each reply datagram, 0 for ever [default: 10]; with --listen, how long to wait for notifications (default: for ever)' -r
complete -c uml_mconsole -l listen -d 'Bind a notification socket at SOCKET (for guests booted with mconsole=notify:SOCKET) and print each notification as it arrives' -r -F
complete -c uml_mconsole -l count -d 'With --listen: exit 0 after N notifications' -r
complete -c uml_mconsole -l json -d 'Print one JSON object per command line (or notification) instead of OK/ERR lines; no prompt in interactive mode'
complete -c uml_mconsole -s h -l help -d 'Print help (see more with \'--help\')'
