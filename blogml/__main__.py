from blogml.cli.main import main

main()
