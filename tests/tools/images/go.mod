module github.com/esosync/pulumi-esosync/tests/tools/images

go 1.25.11
