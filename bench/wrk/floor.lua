-- wrk: GET of the trivial CGI (the mod_cgi floor).
function request()
   return wrk.format("GET", "/t")
end
