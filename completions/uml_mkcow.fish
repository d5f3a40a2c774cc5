complete -c uml_mkcow -s f -l force -d 'Replace COW if it already exists'
complete -c uml_mkcow -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_mkcow -s V -l version -d 'Print version'
