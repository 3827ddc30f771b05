# dispatch_generate(): written with the generator (issue 2).
